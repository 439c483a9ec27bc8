import AsyncHTTPClient
import ConnectTransport
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Tracing

/// Finished spans waiting for export, at most `capacity`; a span past it is dropped and counted.
/// Ending a span only appends it here under a lock: no task is woken, except the exporter's once a
/// batch is ready.
final class SpanQueue: FinishedSpanSink {
    let capacity: Int
    let batchSize: Int
    /// Signalled when the queue reaches a batch, so that a busy process does not wait for the timer.
    let batchReady = WakeSignal()
    private let spans = Mutex<[FinishedSpan]>([])
    private let lost: SpanLossCounter
    private let droppedSinceAsked = Atomic<Int>(0)

    init(capacity: Int, batchSize: Int, lost: SpanLossCounter) {
        self.capacity = capacity
        self.batchSize = batchSize
        self.lost = lost
    }

    func record(_ span: FinishedSpan) {
        let count: Int? = spans.withLock { spans in
            guard spans.count < capacity else { return nil }
            spans.append(span)
            return spans.count
        }
        guard let count else {
            lost.countQueueFull(1)
            droppedSinceAsked.add(1, ordering: .relaxed)
            return
        }
        if count == batchSize { batchReady.signal() }
    }

    /// The oldest spans, at most `limit`, taken out of the queue.
    func take(upTo limit: Int) -> [FinishedSpan] {
        spans.withLock { spans in
            guard spans.count > limit else {
                defer { spans = [] }
                return spans
            }
            defer { spans.removeFirst(limit) }
            return Array(spans.prefix(limit))
        }
    }

    var count: Int { spans.withLock { $0.count } }

    /// Spans dropped for a full queue since the last time this was asked.
    func takeDroppedCount() -> Int { droppedSinceAsked.exchange(0, ordering: .relaxed) }
}

/// Sends the queue's spans to an OTLP/HTTP collector (protobuf): a batch once one is ready or every
/// `OTEL_BSP_SCHEDULE_DELAY`, each export bounded by `OTEL_EXPORTER_OTLP_TIMEOUT`. A batch the
/// collector does not take (an error, a status other than 2xx, no answer in time) is dropped and
/// counted, never retried: the calls go on whatever the collector does. At graceful shutdown what
/// is still queued is sent, within one export timeout.
final class OTLPSpanExporter: Service {
    let queue: SpanQueue
    private let settings: OTelEnvironment
    private let lost: SpanLossCounter
    private let log: RateLimitedLog
    private let logger: Logger
    private let httpConfiguration: HTTPClient.Configuration
    /// When a graceful stop was asked for; what is left is sent within one export timeout of it.
    private let stopAskedAt = Mutex<ContinuousClock.Instant?>(nil)

    init(settings: OTelEnvironment, lost: SpanLossCounter, logger: Logger) throws {
        self.settings = settings
        self.lost = lost
        self.logger = logger
        log = RateLimitedLog(logger: logger, interval: .seconds(30))
        queue = SpanQueue(capacity: settings.queueSize, batchSize: settings.batchSize, lost: lost)
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.tracing.tracer = nil  // an export is not traced: it would feed itself
        configuration.tlsConfiguration = try settings.tls.makeConfiguration()
        httpConfiguration = configuration
    }

    func run() async throws {
        let http = HTTPClient(configuration: httpConfiguration)
        // A graceful shutdown ends the wait, not an export under way: what the collector is
        // taking is not lost to an impatient stop.
        await withGracefulShutdownHandler {
            while !stopAsked, !Task.isCancelled {
                await queue.batchReady.wait(upTo: settings.scheduleDelay)
                // What is queued now, batch after batch; after a failure, the next round.
                var batches = (queue.count + queue.batchSize - 1) / queue.batchSize
                while batches > 0, !stopAsked, await send(queue.take(upTo: queue.batchSize), with: http) { batches -= 1 }
                reportDropped()
            }
        } onGracefulShutdown: {
            self.stopAskedAt.withLock { $0 = .now }
            self.queue.batchReady.signal()
        }
        // What the service's drain left queued.
        let deadline = (stopAskedAt.withLock { $0 } ?? .now) + settings.exportTimeout
        while queue.count > 0, ContinuousClock.now < deadline, await send(queue.take(upTo: queue.batchSize), with: http, before: deadline) {}
        let unsent = queue.take(upTo: .max).count
        if unsent > 0 {
            lost.countExportFailed(unsent)
            logger.warning("spans not exported at shutdown", metadata: ["spans": "\(unsent)"])
        }
        reportDropped()
        try? await http.shutdown()
    }

    private var stopAsked: Bool { stopAskedAt.withLock { $0 != nil } }

    private func reportDropped() {
        let dropped = queue.takeDroppedCount()
        guard dropped > 0 else { return }
        log.warning("spans dropped: the export queue was full", metadata: ["spans": "\(dropped)", "queue_size": "\(queue.capacity)"])
    }

    /// Posts one batch; whether the collector took it.
    private func send(_ batch: [FinishedSpan], with http: HTTPClient, before deadline: ContinuousClock.Instant? = nil) async -> Bool {
        guard !batch.isEmpty else { return true }
        var request = HTTPClientRequest(url: settings.endpoint)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-protobuf")
        for header in settings.headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: OTLPTraceEncoding.request(resource: settings.resource, spans: batch)))
        var timeout = settings.exportTimeout
        if let deadline { timeout = min(timeout, ContinuousClock.now.duration(to: deadline)) }
        let problem: String
        do {
            let response = try await http.execute(request, timeout: TimeAmount(timeout))
            _ = try await response.body.collect(upTo: 1 << 20)
            if (200..<300).contains(response.status.code) { return true }
            problem = "the collector answered \(response.status.code)"
        } catch {
            problem = "\(error)"
        }
        lost.countExportFailed(batch.count)
        log.warning("spans not exported: the collector did not take them", metadata: ["spans": "\(batch.count)", "error": "\(problem)"])
        return false
    }
}
