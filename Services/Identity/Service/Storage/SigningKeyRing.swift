import AccessTokens
import Contracts
import Crypto
import Foundation
import GRDB
import Synchronization

/// Identity's access-token signing keys, kept in its database: the current key signs; retired keys
/// stay published (and accepted) until every token they signed has expired.
///
/// Rotation may happen in another process (the `rotate-signing-keys` command), so the ring reloads
/// from the database when its copy is over 5 seconds old, and at once when a token names a key it
/// does not know. Reloads are asynchronous reads: callers run on event loops, which must never
/// wait for the database.
final class SigningKeyRing: Sendable {
    private struct Loaded {
        var current: SigningKey
        var published: JSONWebKeySet
        var verifier: AccessTokenVerifier
        var loadedAt: ContinuousClock.Instant
    }

    private struct State {
        var loaded: Loaded
        var reloading = false
    }

    private let pool: DatabasePool
    private let now: @Sendable () -> Date
    private let tokenLifetime: TimeInterval
    private let state: Mutex<State>
    private let verified = VerifiedTokenCache()
    static let reloadInterval: Duration = .seconds(5)

    /// Creates the first key if the database has none. Called at start-up, before serving.
    init(pool: DatabasePool, tokenLifetime: TimeInterval, now: @escaping @Sendable () -> Date) throws {
        self.pool = pool
        self.now = now
        self.tokenLifetime = tokenLifetime
        let loaded = try pool.write { db in
            if try Int.fetchOne(db, sql: "SELECT count(*) FROM signing_key WHERE retired_at IS NULL") == 0 {
                try Self.insert(db, SigningKey.generate(), at: now())
            }
            return try Self.load(db, tokenLifetime: tokenLifetime, at: now())
        }
        state = Mutex(State(loaded: loaded))
    }

    /// The key new tokens are signed with.
    func current() async -> SigningKey { await fresh().current }

    /// The public keys to publish: the current key and retired keys whose tokens may still be live.
    func published() async -> JSONWebKeySet { await fresh().published }

    /// Verifies a token, reloading the keys first when it names one not yet seen.
    func verify(_ token: String) async throws(AccessTokenError) -> AccessTokenClaims {
        let at = now()
        if let claims = verified.claims(for: token, now: at) { return claims }
        let snapshot = await fresh()
        let claims: AccessTokenClaims
        do {
            claims = try snapshot.verifier.verify(token, now: at)
        } catch .unknownKey {
            // At most one reload a second, so tokens naming made-up keys cannot load the database.
            guard ContinuousClock.now - snapshot.loadedAt >= .seconds(1) else { throw .unknownKey("") }
            claims = try await reload(after: snapshot).verifier.verify(token, now: at)
        }
        verified.remember(claims, for: token, now: at)
        return claims
    }

    /// Retires the current key and makes a new one current; forgets keys retired long ago.
    /// Returns the new key's id.
    @discardableResult
    static func rotate(pool: DatabasePool, tokenLifetime: TimeInterval, at now: Date) throws -> String {
        let key = SigningKey.generate()
        try pool.write { db in
            try db.execute(sql: "UPDATE signing_key SET retired_at = ? WHERE retired_at IS NULL", arguments: [now.timeIntervalSince1970])
            try insert(db, key, at: now)
            try db.execute(
                sql: "DELETE FROM signing_key WHERE retired_at < ?",
                arguments: [now.timeIntervalSince1970 - tokenLifetime - 86400])
        }
        return key.keyID
    }

    /// The loaded keys, reloaded first when stale. While one caller reloads, others use the old copy.
    private func fresh() async -> Loaded {
        let (snapshot, mustReload) = state.withLock { state -> (Loaded, Bool) in
            guard ContinuousClock.now - state.loaded.loadedAt >= Self.reloadInterval, !state.reloading else {
                return (state.loaded, false)
            }
            state.reloading = true
            return (state.loaded, true)
        }
        guard mustReload else { return snapshot }
        return await reload(after: snapshot)
    }

    private func reload(after snapshot: Loaded) async -> Loaded {
        let newer = try? await pool.read { [tokenLifetime, now] db in try Self.load(db, tokenLifetime: tokenLifetime, at: now()) }
        return state.withLock { state in
            state.reloading = false
            // Even a failed read counts as a reload, so a broken database is not read on every call.
            state.loaded =
                newer
                ?? Loaded(
                    current: snapshot.current, published: snapshot.published,
                    verifier: snapshot.verifier, loadedAt: .now)
            return state.loaded
        }
    }

    private static func insert(_ db: Database, _ key: SigningKey, at now: Date) throws {
        try db.execute(
            sql: "INSERT INTO signing_key (kid, private_key, created_at) VALUES (?, ?, ?)",
            arguments: [key.keyID, key.privateKey.rawRepresentation, now.timeIntervalSince1970])
    }

    private static func load(_ db: Database, tokenLifetime: TimeInterval, at now: Date) throws -> Loaded {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT kid, private_key, retired_at FROM signing_key
                WHERE retired_at IS NULL OR retired_at > ? ORDER BY created_at DESC
                """, arguments: [now.timeIntervalSince1970 - tokenLifetime])
        var current: SigningKey?
        var keys: [SigningKey] = []
        for row in rows {
            let key = SigningKey(keyID: row["kid"], privateKey: try P256.Signing.PrivateKey(rawRepresentation: row["private_key"] as Data))
            keys.append(key)
            if current == nil, (row["retired_at"] as Double?) == nil { current = key }
        }
        guard let current else { throw SigningKeyMissing() }
        let published = JSONWebKeySet(keys: keys.map(\.publicJWK))
        return Loaded(current: current, published: published, verifier: AccessTokenVerifier(keySet: published), loadedAt: .now)
    }

    struct SigningKeyMissing: Error, CustomStringConvertible {
        var description: String { "identity's database has no current signing key; run `identity rotate-signing-keys`" }
    }
}
