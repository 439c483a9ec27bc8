import Foundation
import GRDB

/// The `login_throttle` table: failure counts that survive restarts.
enum LoginThrottleStore {
    /// Keys for one sign-in attempt: the account (by normalised email) and the client's IP.
    static func subjects(email: EmailAddress, clientIP: String?) -> [String] {
        ["account:\(email.key)"] + (clientIP.map { ["ip:\($0)"] } ?? [])
    }

    /// The account's and the client address's locks in force at `now`, and the address's failures.
    static func state(_ db: Database, subjects: [String], policy: LoginThrottlePolicy, at now: Date) throws -> LoginThrottleState {
        var state = LoginThrottleState()
        for (index, subject) in subjects.enumerated() {
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE subject = ?",
                    arguments: [subject])
            else { continue }
            let lock = (row["locked_until"] as Double?).map(Date.init(timeIntervalSince1970:)).flatMap { $0 > now ? $0 : nil }
            if index == 0 {
                state.accountLockedUntil = lock
            } else {
                state.clientLockedUntil = lock
                state.clientFailures = policy.currentFailures(
                    row["failures"], lastFailure: Date(timeIntervalSince1970: row["last_failure_at"]), at: now)
            }
        }
        return state
    }

    /// Counts a failure for each subject; returns true if one of them became locked by it.
    static func recordFailure(_ db: Database, subjects: [String], policy: LoginThrottlePolicy, at now: Date) throws -> Bool {
        var locked = false
        for subject in subjects {
            let row = try Row.fetchOne(db, sql: "SELECT failures, last_failure_at FROM login_throttle WHERE subject = ?", arguments: [subject])
            let previous =
                row.map { policy.currentFailures($0["failures"], lastFailure: Date(timeIntervalSince1970: $0["last_failure_at"]), at: now) } ?? 0
            let failures = previous + 1
            let until = policy.lockedUntil(failures: failures, lastFailure: now)
            locked = locked || until != nil
            try db.execute(
                sql: """
                    INSERT INTO login_throttle (subject, failures, last_failure_at, locked_until) VALUES (?, ?, ?, ?)
                    ON CONFLICT(subject) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at,
                        locked_until = excluded.locked_until
                    """, arguments: [subject, failures, now.timeIntervalSince1970, until?.timeIntervalSince1970])
        }
        return locked
    }

    static func clear(_ db: Database, subject: String) throws {
        try db.execute(sql: "DELETE FROM login_throttle WHERE subject = ?", arguments: [subject])
    }
}
