import Foundation
import Synchronization

/// Remembers the claims of tokens already verified, so a client that sends the same access token
/// on every call pays for the signature check once. An entry is only ever found by the exact
/// token text, and is not returned once the token has expired.
public final class VerifiedTokenCache: Sendable {
    private let entries = Mutex<[String: AccessTokenClaims]>([:])
    private let capacity: Int

    /// At most `capacity` tokens are kept; when full, expired ones go first, then everything.
    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The claims of `token` if it was verified before and has not expired at `now`.
    public func claims(for token: String, now: Date) -> AccessTokenClaims? {
        guard let claims = entries.withLock({ $0[token] }), claims.expiresAt > now else { return nil }
        return claims
    }

    public func remember(_ claims: AccessTokenClaims, for token: String, now: Date) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value.expiresAt > now }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = claims
        }
    }
}
