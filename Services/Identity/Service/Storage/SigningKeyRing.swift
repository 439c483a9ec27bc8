import AccessTokens
import Contracts
import Crypto
import Foundation
import Synchronization

/// Identity's access-token signing keys, kept in its database: the current key signs; retired keys
/// stay published (and accepted) until every token they signed has expired.
///
/// Rotation may happen in another process (the `rotate-signing-keys` command, another replica),
/// so the ring reloads from the database when its copy is over 5 seconds old, and at once when a
/// token names a key it does not know. Reloads are asynchronous reads: callers run on event loops, which must never
/// wait for the database.
final class SigningKeyRing: Sendable {
    private struct Loaded {
        var current: SigningKey
        var published: JSONWebKeySet
        var verifier: AccessTokenVerifier
        var loadedAt: ContinuousClock.Instant
    }

    private struct State {
        /// nil until `prepare` (at start, before serving) loaded the keys.
        var loaded: Loaded?
        var reloading = false
    }

    private let storage: any IdentityStorage
    private let now: @Sendable () -> Date
    private let tokenLifetime: TimeInterval
    private let state = Mutex(State())
    private let verified = VerifiedTokenCache()
    static let reloadInterval: Duration = .seconds(5)

    init(storage: any IdentityStorage, tokenLifetime: TimeInterval, now: @escaping @Sendable () -> Date) {
        self.storage = storage
        self.now = now
        self.tokenLifetime = tokenLifetime
    }

    /// Creates the first key if there is none (of several replicas starting at once, one does),
    /// and loads the keys. Run at start-up, before serving.
    func prepare() async throws {
        try await storage.addSigningKeyIfNone(SigningKey.generate(), at: now())
        let loaded = try await load()
        state.withLock { $0.loaded = loaded }
    }

    /// The key new tokens are signed with.
    func current() async throws -> SigningKey { try await fresh().current }

    /// The public keys to publish: the current key and retired keys whose tokens may still be live.
    func published() async throws -> JSONWebKeySet { try await fresh().published }

    /// Verifies a token, reloading the keys first when it names one not yet seen.
    func verify(_ token: String) async throws(AccessTokenError) -> AccessTokenClaims {
        let at = now()
        if let claims = verified.claims(for: token, now: at) { return claims }
        guard let snapshot = try? await fresh() else { throw .unknownKey("") }
        let claims: AccessTokenClaims
        do {
            claims = try snapshot.verifier.verify(token, now: at)
        } catch .unknownKey {
            // At most one reload a second, so tokens naming made-up keys cannot load the database.
            guard ContinuousClock.now - snapshot.loadedAt >= .seconds(1), let reloaded = try? await reload(after: snapshot) else {
                throw .unknownKey("")
            }
            claims = try reloaded.verifier.verify(token, now: at)
        }
        verified.remember(claims, for: token, now: at)
        return claims
    }

    /// Retires the current key and makes a new one current; forgets keys retired long ago.
    /// Returns the new key's id. Every replica has it within `reloadInterval`.
    @discardableResult
    static func rotate(storage: any IdentityStorage, tokenLifetime: TimeInterval, at now: Date) async throws -> String {
        let key = SigningKey.generate()
        try await storage.rotateSigningKey(to: key, at: now, forgetBefore: now - tokenLifetime - 86400)
        return key.keyID
    }

    /// The loaded keys, reloaded first when stale. While one caller reloads, others use the old copy.
    private func fresh() async throws -> Loaded {
        let (snapshot, mustReload) = state.withLock { state -> (Loaded?, Bool) in
            if let loaded = state.loaded, ContinuousClock.now - loaded.loadedAt < Self.reloadInterval || state.reloading {
                return (loaded, false)
            }
            state.reloading = true
            return (state.loaded, true)
        }
        if !mustReload, let snapshot { return snapshot }
        return try await reload(after: snapshot)
    }

    private func reload(after snapshot: Loaded?) async throws -> Loaded {
        let newer = try? await load()
        return try state.withLock { state in
            state.reloading = false
            // Even a failed read counts as a reload, so a broken database is not read on every call.
            if let newer {
                state.loaded = newer
            } else if let snapshot {
                state.loaded = Loaded(current: snapshot.current, published: snapshot.published, verifier: snapshot.verifier, loadedAt: .now)
            }
            guard let loaded = state.loaded else { throw SigningKeyMissing() }
            return loaded
        }
    }

    private func load() async throws -> Loaded {
        var current: SigningKey?
        var keys: [SigningKey] = []
        for stored in try await storage.signingKeys(retiredAfter: now() - tokenLifetime) {
            let key = SigningKey(keyID: stored.keyID, privateKey: try P256.Signing.PrivateKey(rawRepresentation: stored.privateKey))
            keys.append(key)
            if current == nil, stored.retiredAt == nil { current = key }
        }
        guard let current else { throw SigningKeyMissing() }
        let published = JSONWebKeySet(keys: keys.map(\.publicJWK))
        return Loaded(current: current, published: published, verifier: AccessTokenVerifier(keySet: published), loadedAt: .now)
    }

    struct SigningKeyMissing: Error, CustomStringConvertible {
        var description: String { "identity's database has no current signing key; run `identity rotate-signing-keys`" }
    }
}
