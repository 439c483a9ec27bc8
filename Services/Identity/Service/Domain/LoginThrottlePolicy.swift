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

    /// How long every answer about a locked account waits: it slows a guesser spread over many
    /// addresses, and costs the server no thread (the wait is a suspension).
    var lockedAccountDelay: Duration = .milliseconds(500)

    /// Whether an attempt may succeed. A locked client address is refused outright. A locked
    /// account is refused too, except to the right password from an address with no failures
    /// at all: so failures from many addresses slow guessing but never lock the owner out.
    func admits(_ state: LoginThrottleState, passwordMatches: Bool) -> Bool {
        if state.clientLockedUntil != nil { return false }
        if state.accountLockedUntil != nil { return passwordMatches && state.clientFailures == 0 }
        return true
    }
}

/// What the throttle knows of one attempt before its password is judged.
struct LoginThrottleState: Sendable, Equatable {
    var accountLockedUntil: Date?
    var clientLockedUntil: Date?
    /// Failures recorded for the client's address (against any account) still counting.
    var clientFailures = 0

    /// The later of the two locks, for the audit trail.
    var lockedUntil: Date? { [accountLockedUntil, clientLockedUntil].compactMap { $0 }.max() }
}
