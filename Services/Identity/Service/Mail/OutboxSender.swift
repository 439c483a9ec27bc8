import Foundation
import Logging
import ServiceRuntime
import Tracing

/// Delivers the outbox: sends what is due, marks it sent, and retries failures with growing
/// delays (1 s doubling to 5 min). A permanent refusal by the mail server ends the retries.
/// Runs as the service's background work (`runner()`).
struct OutboxSender: Sendable {
    let storage: any IdentityStorage
    let transport: any EmailTransport
    let from: String
    let wake: WakeSignal
    let now: @Sendable () -> Date
    let logger: Logger
    /// Work that makes emails, run before each round of sending (password reset requests).
    let prepare: @Sendable () async throws -> Int

    /// Longest wait between retries.
    static let longestBackoff: TimeInterval = 300
    /// How long a sender owns the emails it took: far more than sending takes. A replica that
    /// dies with emails taken leaves them to another after this.
    static let lease: TimeInterval = 120

    /// The outbox as background work: password-reset requests turned into emails first, then
    /// the emails due, 20 at a time; woken when an email is recorded, or when the next retry is due.
    func runner() -> DurableWorkRunner {
        DurableWorkRunner(
            name: "email outbox", wake: wake, batchSize: 20, idleWait: .seconds(5),
            due: { [self] in
                while try await prepare() > 0, !Task.isCancelled {}
                return try await storage.leaseDueEmails(at: now(), until: now() + Self.lease, limit: 20, from: from)
            },
            perform: { [self] pending in await deliver(pending) },
            nextDue: { [storage] in try await storage.nextEmailDue() },
            now: now, logger: logger)
    }

    private func deliver(_ pending: EmailOutbox.Pending) async {
        await BackgroundSpan.run("email delivery", linkedTo: [pending.traceParent]) { span in
            span.attributes["email.id"] = pending.message.id
            span.attributes["email.attempt"] = pending.attempts + 1
            await deliver(pending, span: span)
        }
    }

    private func deliver(_ pending: EmailOutbox.Pending, span: any Span) async {
        let id = pending.message.id
        do {
            try await transport.send(pending.message)
            try await storage.markEmailSent(id: id, at: now())
            logger.info("email sent", metadata: ["email_id": "\(id)", "subject": "\(pending.message.subject)"])
        } catch {
            let permanent = (error as? EmailDeliveryError)?.permanent ?? false
            span.setStatus(SpanStatus(code: .error))
            span.attributes["email.permanent_failure"] = permanent
            let delay = RetryBackoff.delay(afterAttempts: pending.attempts, cap: Self.longestBackoff)
            let retryAt = permanent ? nil : now() + delay
            logger.warning(
                "email not sent",
                metadata: [
                    "email_id": "\(id)", "error": "\(error)", "attempt": "\(pending.attempts + 1)",
                    "retry_in_seconds": "\(permanent ? "never" : String(Int(delay)))"
                ])
            do {
                try await storage.markEmailFailed(id: id, error: "\(error)", retryAt: retryAt, at: now())
            } catch {
                logger.error("outbox update failed", metadata: ["email_id": "\(id)", "error": "\(error)"])
            }
        }
    }
}
