import Foundation

/// When a session ends: 24 hours after sign-in at the latest, or after 2 hours without use.
struct SessionRules: Sendable {
    var absoluteLifetime: TimeInterval = 24 * 3600
    var idleLifetime: TimeInterval = 2 * 3600
    /// How long an access token lives; also how long a retired signing key stays published.
    var accessTokenLifetime: TimeInterval = 10 * 60

    /// True if a session created at `createdAt`, last used at `lastUsedAt`, is still live at `now`.
    func isLive(createdAt: Date, lastUsedAt: Date, revokedAt: Date?, at now: Date) -> Bool {
        revokedAt == nil && now < createdAt + absoluteLifetime && now < lastUsedAt + idleLifetime
    }

    /// When the session ends if not used again.
    func endsAt(createdAt: Date, lastUsedAt: Date) -> Date {
        min(createdAt + absoluteLifetime, lastUsedAt + idleLifetime)
    }
}
