import Foundation
import GRDB
import ServiceRuntime

/// The transactional outbox's rows: emails are written here in the transaction that causes them,
/// and `OutboxSender` delivers them afterwards, so a crash in between loses nothing.
enum EmailOutbox {
    /// Groups of emails that share a sending limit per address.
    enum Kind: String, Sendable {
        /// Verification and "you already have an account".
        case account
        case passwordReset = "password_reset"
        case notice
    }

    /// At most one email per address and kind per minute, and ten per hour.
    static let minimumGap: TimeInterval = 60
    static let hourlyLimit = 10

    /// Queues `message`; returns false (queuing nothing) when the address's limit for `kind` is reached.
    @discardableResult
    /// `trace` is the `traceparent` of the call queuing it (`TraceContext.traceParent()`, taken
    /// before the transaction: its closure runs outside the task).
    static func enqueue(_ db: Database, _ message: EmailMessage, kind: Kind, at now: Date, trace: String?) throws -> Bool {
        if kind != .notice {
            let recent = try Double.fetchAll(
                db,
                sql: """
                    SELECT created_at FROM email_outbox WHERE recipient = ? COLLATE NOCASE AND kind = ? AND created_at > ?
                    """, arguments: [message.to, kind.rawValue, now.timeIntervalSince1970 - 3600])
            if recent.count >= hourlyLimit || recent.contains(where: { $0 > now.timeIntervalSince1970 - minimumGap }) {
                return false
            }
        }
        try db.execute(
            sql: """
                INSERT INTO email_outbox (id, kind, recipient, subject, body, created_at, next_attempt_at, trace_parent)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                message.id, kind.rawValue, message.to, message.subject, message.body,
                now.timeIntervalSince1970, now.timeIntervalSince1970, trace
            ])
        return true
    }

    /// An email waiting to go out.
    struct Pending: Sendable {
        var message: EmailMessage
        var attempts: Int
        /// The trace of the call that queued it.
        var traceParent: String?
    }

    /// Emails due at `now` and not leased, leased until `until`: a sender owns what it took
    /// until it records the outcome, or its lease runs out (it died) and another takes it.
    static func leaseDue(_ db: Database, at now: Date, until: Date, limit: Int, from: String) throws -> [Pending] {
        let due = try Row.fetchAll(
            db,
            sql: """
                SELECT id, recipient, subject, body, attempts, trace_parent FROM email_outbox
                WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
                ORDER BY next_attempt_at LIMIT ?2
                """, arguments: [now.timeIntervalSince1970, limit]
        )
        for row in due {
            try db.execute(sql: "UPDATE email_outbox SET lease_until = ? WHERE id = ?", arguments: [until.timeIntervalSince1970, row["id"] as String])
        }
        return due.map { row in
            Pending(
                message: EmailMessage(from: from, to: row["recipient"], subject: row["subject"], body: row["body"], id: row["id"]),
                attempts: row["attempts"], traceParent: row["trace_parent"])
        }
    }

    /// When the next email falls due, if any is waiting.
    static func nextDue(_ db: Database) throws -> Date? {
        try Double.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM email_outbox WHERE sent_at IS NULL AND failed_at IS NULL")
            .map(Date.init(timeIntervalSince1970:))
    }

    /// Marks an email delivered. Its body (which may hold a link token) is erased: it is not needed any more.
    static func markSent(_ db: Database, id: String, at now: Date) throws {
        try db.execute(
            sql: "UPDATE email_outbox SET sent_at = ?, body = '', attempts = attempts + 1, last_error = NULL, lease_until = NULL WHERE id = ?",
            arguments: [now.timeIntervalSince1970, id])
    }

    static func markFailedAttempt(_ db: Database, id: String, error: String, retryAt: Date?, at now: Date) throws {
        if let retryAt {
            try db.execute(
                sql: "UPDATE email_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_until = NULL WHERE id = ?",
                arguments: [error, retryAt.timeIntervalSince1970, id])
        } else {
            try db.execute(
                sql: "UPDATE email_outbox SET attempts = attempts + 1, last_error = ?, failed_at = ?, body = '', lease_until = NULL WHERE id = ?",
                arguments: [error, now.timeIntervalSince1970, id])
        }
    }
}
