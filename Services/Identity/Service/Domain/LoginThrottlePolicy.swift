import Foundation

/// How failed sign-ins slow down further attempts, per account and per client IP: the first five
/// failures are free, then each one locks for twice as long as the last (30 s, 1 min, 2 min, ...)
/// up to 15 minutes. A success clears the count; so does a day without failures.
struct LoginThrottlePolicy: Sendable {
    var freeFailures = 5
    var firstLockout: TimeInterval = 30
    var longestLockout: TimeInterval = 15 * 60
    var forgetAfter: TimeInterval = 24 * 3600

    /// The lock that follows the `failures`-th failure at `lastFailure`, or nil while failures are free.
    func lockedUntil(failures: Int, lastFailure: Date) -> Date? {
        guard failures >= freeFailures else { return nil }
        let doublings = min(failures - freeFailures, 30)
        return lastFailure + min(firstLockout * pow(2, Double(doublings)), longestLockout)
    }

    /// The failure count to carry forward at `now`: zero once the last failure is old enough.
    func currentFailures(_ failures: Int, lastFailure: Date, at now: Date) -> Int {
        now.timeIntervalSince(lastFailure) >= forgetAfter ? 0 : failures
    }
}
