import Synchronization
import Tracing

/// Where spans go when they end: the exporter's queue. Called on the thread that ends the span,
/// so it must be quick and never wait.
public protocol FinishedSpanSink: Sendable {
    func record(_ span: FinishedSpan)
}

/// A span as it ended, for the exporter.
public struct FinishedSpan: Sendable {
    public var name: String
    public var kind: SpanKind
    public var identity: TraceIdentity
    public var parentSpanID: UInt64?
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    public var attributes: SpanAttributes
    public var events: [SpanEvent]
    public var links: [SpanLink]
    public var status: SpanStatus?
    /// Events and links past the limit, counted rather than kept.
    public var droppedEvents = 0
    public var droppedLinks = 0
}

/// A span the tracer records: its description changes under a lock until it ends, when it goes to
/// the sink once. Events and links are capped (`limit` each, OpenTelemetry's default), so a loop
/// that keeps adding them cannot grow a span without bound.
public final class RecordedSpan: Span {
    public let context: ServiceContext
    private let sink: any FinishedSpanSink
    private let state: Mutex<FinishedSpan?>
    static let limit = 128

    init(
        _ operationName: String, kind: SpanKind, identity: TraceIdentity, parentSpanID: UInt64?, context parent: ServiceContext,
        start: UInt64, sink: any FinishedSpanSink
    ) {
        var context = parent
        context[TraceIdentity.self] = identity
        context[TraceSampling.self] = .sampled
        self.context = context
        self.sink = sink
        state = Mutex(
            FinishedSpan(
                name: operationName, kind: kind, identity: identity, parentSpanID: parentSpanID, startNanoseconds: start,
                endNanoseconds: start, attributes: [:], events: [], links: [], status: nil))
    }

    public var operationName: String {
        get { state.withLock { $0?.name ?? "" } }
        set { state.withLock { $0?.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0?.attributes ?? [:] } }
        set { state.withLock { $0?.attributes = newValue } }
    }

    public var isRecording: Bool { state.withLock { $0 != nil } }

    public func setStatus(_ status: SpanStatus) {
        state.withLock { span in
            // The spec: once Ok, a span's status no longer changes.
            if span?.status?.code != .ok { span?.status = status }
        }
    }

    public func addEvent(_ event: SpanEvent) {
        state.withLock { span in
            guard let count = span?.events.count else { return }
            if count < Self.limit { span?.events.append(event) } else { span?.droppedEvents += 1 }
        }
    }

    /// An `exception` event, as OpenTelemetry's conventions name it: the error's type and text.
    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        var attributes = attributes
        attributes["exception.type"] = String(describing: type(of: error))
        attributes["exception.message"] = String(describing: error)
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: attributes))
    }

    public func addLink(_ link: SpanLink) {
        state.withLock { span in
            guard let count = span?.links.count else { return }
            if count < Self.limit { span?.links.append(link) } else { span?.droppedLinks += 1 }
        }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let end = instant().nanosecondsSinceEpoch
        guard
            var finished = state.withLock({ span in
                defer { span = nil }
                return span
            })
        else { return }
        finished.endNanoseconds = max(end, finished.startNanoseconds)
        sink.record(finished)
    }
}
