import ConnectTransport
import Foundation
import Logging
import ServiceLifecycle
import Tracing

/// Work a service recorded durably and does in the background (emails to send, saga steps owed,
/// entitlements to refresh), written once: pick the items due now, do each (the item records its
/// own outcome: done, or when to try again), then sleep until woken, until the next item falls
/// due, or `idleWait`, whichever is first. A failure to read the due items is logged and tried
/// again a second later. It runs as a swift-service-lifecycle `Service` and stops at graceful
/// shutdown, between items.
public final class DurableWorkRunner: Service, Sendable {
    public let name: String
    /// Signal it when new work is recorded, so it starts at once.
    public let wake: WakeSignal
    private let batchSize: Int
    private let idleWait: Duration
    /// Does the items due now (at most `batchSize`); returns how many there were.
    private let round: @Sendable () async throws -> Int
    private let nextDue: (@Sendable () async throws -> Date?)?
    private let now: @Sendable () -> Date
    private let logger: Logger

    /// `due` finds at most `batchSize` items due now; `perform` does one. `nextDue`, if given,
    /// says when the next item falls due, so the runner need not wake before then.
    public init<Item: Sendable>(
        name: String, wake: WakeSignal = WakeSignal(), batchSize: Int, idleWait: Duration,
        due: @escaping @Sendable () async throws -> [Item], perform: @escaping @Sendable (Item) async -> Void,
        nextDue: (@Sendable () async throws -> Date?)? = nil, now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) {
        self.name = name
        self.wake = wake
        self.batchSize = batchSize
        self.idleWait = idleWait
        self.round = {
            let items = try await due()
            for item in items where !Task.isCancelled { await perform(item) }
            return items.count
        }
        self.nextDue = nextDue
        self.now = now
        self.logger = logger
    }

    public func run() async {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    private func loop() async {
        while !Task.isCancelled {
            do {
                if try await round() >= batchSize { continue }
                var wait = idleWait
                if let nextDue, let next = try await nextDue() {
                    wait = min(wait, .milliseconds(Int64(max(0.01, next.timeIntervalSince(now())) * 1000)))
                }
                await wake.wait(upTo: wait)
            } catch {
                if Task.isCancelled { return }
                logger.error("background work failed; trying again", metadata: ["work": "\(name)", "error": "\(error)"])
                await wake.wait(upTo: .seconds(1))
            }
        }
    }
}

/// How long to wait before trying again after `attempts` failures: 1 s doubling, at most `cap`.
public enum RetryBackoff {
    public static func delay(afterAttempts attempts: Int, cap: TimeInterval) -> TimeInterval {
        min(pow(2, Double(max(0, attempts))), cap)
    }
}

/// The spans of background work. Each item done is a trace of its own (it may run long after the
/// call that recorded it, on another replica, or once for many calls), linked to the traces of
/// the calls that recorded it: their `traceparent`s, kept with the work.
public enum BackgroundSpan {
    public static func run<Result>(
        _ name: String, linkedTo traceParents: [String?], _ body: (any Span) async throws -> Result
    ) async rethrows -> Result {
        try await withSpan(name, context: .topLevel, ofKind: .internal) { span in
            for traceParent in Set(traceParents.compactMap { $0 }) {
                if let context = TraceContext.context(ofTraceParent: traceParent) {
                    span.addLink(SpanLink(context: context, attributes: [:]))
                }
            }
            return try await TraceContext.$span.withValue(span) { try await body(span) }
        }
    }
}
