import Foundation
import GRDB
import Logging
import ServiceRuntime

/// Delivers the outbox: sends what is due, marks it sent, and retries failures with growing
/// delays (1 s doubling to 5 min). A permanent refusal by the mail server ends the retries.
/// Runs as the service's background task.
struct OutboxSender: Sendable {
    let pool: DatabasePool
    let transport: any EmailTransport
    let from: String
    let wake: WakeSignal
    let now: @Sendable () -> Date
    let logger: Logger
    /// Work that makes emails, run before each round of sending (password reset requests).
    let prepare: @Sendable () async throws -> Int

    /// Longest wait between retries.
    static let longestBackoff: TimeInterval = 300

    func run() async {
        while !Task.isCancelled {
            do {
                while try await prepare() > 0, !Task.isCancelled {}
                let batch = try await pool.read { [now, from] db in try EmailOutbox.due(db, at: now(), limit: 20, from: from) }
                for pending in batch where !Task.isCancelled {
                    await deliver(pending)
                }
                if batch.count == 20 { continue }
                let next = try await pool.read { db in try EmailOutbox.nextDue(db) }
                let wait = next.map { max(0.01, min($0.timeIntervalSince(now()), 5)) } ?? 5
                await wake.wait(upTo: .milliseconds(Int64(wait * 1000)))
            } catch {
                logger.error("outbox read failed", metadata: ["error": "\(error)"])
                await wake.wait(upTo: .seconds(1))
            }
        }
    }

    private func deliver(_ pending: EmailOutbox.Pending) async {
        let id = pending.message.id
        do {
            try await transport.send(pending.message)
            try await pool.write { [now] db in try EmailOutbox.markSent(db, id: id, at: now()) }
            logger.info("email sent", metadata: ["email_id": "\(id)", "subject": "\(pending.message.subject)"])
        } catch {
            let permanent = (error as? EmailDeliveryError)?.permanent ?? false
            let delay = min(pow(2, Double(pending.attempts)), Self.longestBackoff)
            let retryAt = permanent ? nil : now() + delay
            logger.warning("email not sent", metadata: [
                "email_id": "\(id)", "error": "\(error)", "attempt": "\(pending.attempts + 1)",
                "retry_in_seconds": "\(permanent ? "never" : String(Int(delay)))",
            ])
            do {
                try await pool.write { [now] db in
                    try EmailOutbox.markFailedAttempt(db, id: id, error: "\(error)", retryAt: retryAt, at: now())
                }
            } catch {
                logger.error("outbox update failed", metadata: ["email_id": "\(id)", "error": "\(error)"])
            }
        }
    }
}
