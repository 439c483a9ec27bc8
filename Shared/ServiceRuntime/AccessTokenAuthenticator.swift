import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import Logging
import RPCCore
import Synchronization

/// Verifies end users' access tokens in services other than identity: with identity's published
/// keys, fetched over RPC, kept in memory, and fetched again when a token names an unknown key
/// (at most once a second) or when the copy is five minutes old.
public final class AccessTokenAuthenticator: Sendable {
    private struct Keys {
        var verifier: AccessTokenVerifier
        var fetchedAt: ContinuousClock.Instant
    }

    private let identity: ConnectClient
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let keys = Mutex<Keys?>(nil)
    private let lastFetchAttempt = Mutex<ContinuousClock.Instant?>(nil)
    private let fetchInFlight = Mutex<Task<Keys?, Never>?>(nil)
    private let verified = VerifiedTokenCache()
    static let refreshInterval: Duration = .seconds(300)

    public init(identity: ConnectClient, now: @escaping @Sendable () -> Date = { Date() }, logger: Logger) {
        self.identity = identity
        self.now = now
        self.logger = logger
    }

    /// The claims of a valid token, or `unauthenticated` saying what to do; `unavailable` when
    /// identity's keys cannot be had.
    public func authenticate(_ bearerToken: String?) async throws(RPCError) -> AccessTokenClaims {
        guard let token = bearerToken, !token.isEmpty else {
            throw RPCError(.unauthenticated, "this call needs an access token: send 'authorization: Bearer <access token>' from identity's Login")
        }
        let at = now()
        if let claims = verified.claims(for: token, now: at) { return claims }
        var current = keys.withLock { $0 }
        if current == nil || ContinuousClock.now - current!.fetchedAt > Self.refreshInterval {
            current = await fetch() ?? current
        }
        guard var verifier = current?.verifier else {
            throw RPCError(.unavailable, "cannot check the access token now: identity's signing keys are unavailable; try again shortly")
        }
        var result = Result { () throws(AccessTokenError) in try verifier.verify(token, now: at) }
        // A key this copy has not seen: identity may have rotated. Fetch again, waiting out the
        // once-a-second limit if need be; twice at most, since a fetch already under way may
        // predate the new key. A forged key id costs its caller that wait, never more fetches.
        for _ in 0..<2 {
            guard case .failure(.unknownKey) = result, let refreshed = await fetch(waitingOutTheLimit: true) else { break }
            verifier = refreshed.verifier
            result = Result { () throws(AccessTokenError) in try verifier.verify(token, now: at) }
        }
        switch result {
        case .success(let claims):
            verified.remember(claims, for: token, now: at)
            return claims
        case .failure(let error):
            throw RPCError(.unauthenticated, error.message)
        }
    }

    /// Fetches identity's keys, at most once a second; nil when not allowed yet or when it fails.
    /// Callers that come while a fetch is under way wait for it (at a cold start, every first
    /// request needs the keys; they must not be refused because one of them went first).
    private func fetch(waitingOutTheLimit: Bool = false) async -> Keys? {
        var waited = false
        while true {
            var wait: Duration = .zero
            let (task, started) = fetchInFlight.withLock { current -> (Task<Keys?, Never>?, Bool) in
                if let current { return (current, false) }
                let allowed = lastFetchAttempt.withLock { last -> Bool in
                    if let last, ContinuousClock.now - last < .seconds(1) {
                        wait = .seconds(1) - (ContinuousClock.now - last)
                        return false
                    }
                    last = .now
                    return true
                }
                guard allowed else { return (nil, false) }
                let task = Task { await self.fetchNow() }
                current = task
                return (task, true)
            }
            if let task {
                let keys = await task.value
                if started { fetchInFlight.withLock { $0 = nil } }
                return keys
            }
            guard waitingOutTheLimit, !waited else { return nil }
            waited = true
            try? await Task.sleep(for: wait)
        }
    }

    private func fetchNow() async -> Keys? {
        do {
            let set = try await identity.call(Identity.getSigningKeys, Empty(), options: .init(timeout: .seconds(5)))
            let fresh = Keys(verifier: AccessTokenVerifier(keySet: set), fetchedAt: .now)
            keys.withLock { $0 = fresh }
            return fresh
        } catch {
            logger.warning("cannot fetch identity's signing keys", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
