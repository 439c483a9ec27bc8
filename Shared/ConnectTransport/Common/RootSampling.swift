import Foundation
import Logging
import Synchronization
import Tracing

/// `parentbased_traceidratio` decided before swift-otel's tracer is asked: that tracer draws a
/// trace id and a span id from the system's random source (a system call each, behind one lock)
/// for every span, recorded or not, which at 1% cost a cheap call a quarter of its throughput.
/// Here a trace this process starts is sampled at the ratio by a cheap generator; only sampled
/// ones reach swift-otel (set to sample every root). The others get ids from the same generator:
/// their log lines carry them, and the services they call receive them flagged not sampled, so
/// record nothing either. A span inside a trace follows its parent's flag, as the spec says.
///
/// An unrecorded root keeps its ids in its context, or, when it is a server call's (started from
/// `TraceContext.untracedCall` and run in `TraceContext.run(in:)`), in the span alone, all such
/// calls sharing one context: no dictionary built per call.
public final class RootSamplingTracer: Tracer {
    private let base: any Tracer
    /// A root is sampled when a draw falls below this; `UInt64.max` samples every one.
    private let threshold: UInt64
    private let draws = CheapRandom()

    public init(base: any Tracer, ratio: Double) {
        self.base = base
        threshold = ratio >= 1 ? .max : UInt64(max(0, ratio) * 0x1p64)
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> SampledSpan {
        let parent = context()
        switch parent[TraceSampling.self] {
        case .sampled?: break
        case .unsampled?, .unsampledRoot?: return .unrecorded(NoOpTracer.NoOpSpan(context: parent))
        case .unsampledCallRoot?:
            // Its spans carry the root's ids on, wherever they are kept.
            guard let root = TraceSampling.unsampledRoot(of: parent) else { return .unrecorded(NoOpTracer.NoOpSpan(context: parent)) }
            return .unrecordedKeepingIDs(root, context: parent)
        case .untracedCall?:
            // A root nobody records gets ids, which stand for this span, so nothing exported names them.
            let draw = draws.next()
            guard threshold == .max || draw < threshold else {
                guard parent.count > 1 else { return .unrecordedKeepingIDs(UnsampledRoot(draw: draw), context: TraceSampling.untracedCallRoot) }
                var context = parent  // with something of the caller's besides
                context[TraceSampling.self] = .unsampledCallRoot
                return .unrecordedKeepingIDs(UnsampledRoot(draw: draw), context: context)
            }
        case nil:
            let draw = draws.next()
            guard threshold == .max || draw < threshold else {
                var context = parent
                context[TraceSampling.self] = .unsampledRoot(UnsampledRoot(draw: draw))
                return .unrecorded(NoOpTracer.NoOpSpan(context: context))
            }
        }
        return .recorded(base.startSpan(operationName, context: parent, ofKind: kind, at: instant(), function: function, file: fileID, line: line))
    }

    public func activeSpan(identifiedBy context: ServiceContext) -> SampledSpan? {
        base.activeSpan(identifiedBy: context).map { .recorded($0) }
    }

    @available(*, deprecated, message: "as LegacyTracer's")
    public func forceFlush() { base.forceFlush() }

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        // swift-otel's only propagator is W3C trace context (it refuses to start with any other),
        // which reads nothing from a carrier without a traceparent.
        guard let traceParent = extractor.extract(key: "traceparent", from: carrier) else { return }
        let before = context.count
        base.extract(carrier, into: &context, using: extractor)
        // The caller's flag, when swift-otel took its traceparent (the context grew).
        guard context.count > before else { return }
        context[TraceSampling.self] = TraceSampling(traceParent: traceParent)
    }

    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        base.inject(context, into: &carrier, using: injector)
        if let root = TraceSampling.unsampledRoot(of: context) { injector.inject(root.traceParent, forKey: "traceparent", into: &carrier) }
    }
}

/// A span the root sampler started: swift-otel's (recorded) or one nobody records. Small enough
/// to sit in `TraceContext.span` without a box of its own (the recorded one is boxed: 1 in 100).
public enum SampledSpan: Span {
    indirect case recorded(any Span)
    case unrecorded(NoOpTracer.NoOpSpan)
    /// In the trace of an unrecorded root whose ids its context does not hold: here they are.
    case unrecordedKeepingIDs(UnsampledRoot, context: ServiceContext)

    public var context: ServiceContext {
        switch self {
        case .recorded(let span):
            // Marked, so the spans started inside it follow it rather than draw again.
            var context = span.context
            context[TraceSampling.self] = .sampled
            return context
        case .unrecorded(let span): return span.context
        case .unrecordedKeepingIDs(_, let context): return context
        }
    }

    public var operationName: String {
        get {
            if case .recorded(let span) = self { return span.operationName }
            return "unrecorded"
        }
        nonmutating set {
            if case .recorded(let span) = self { span.operationName = newValue }
        }
    }

    public var attributes: SpanAttributes {
        get {
            if case .recorded(let span) = self { return span.attributes }
            return [:]
        }
        nonmutating set {
            if case .recorded(let span) = self { span.attributes = newValue }
        }
    }

    public var isRecording: Bool {
        if case .recorded(let span) = self { return span.isRecording }
        return false
    }

    public func setStatus(_ status: SpanStatus) {
        if case .recorded(let span) = self { span.setStatus(status) }
    }

    public func addEvent(_ event: SpanEvent) {
        if case .recorded(let span) = self { span.addEvent(event) }
    }

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        if case .recorded(let span) = self { span.recordError(error, attributes: attributes, at: instant()) }
    }

    public func addLink(_ link: SpanLink) {
        if case .recorded(let span) = self { span.addLink(link) }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        if case .recorded(let span) = self { span.end(at: instant()) }
    }
}

/// Whether the trace a context belongs to is recorded, as the root sampler decided or the caller's
/// traceparent said.
public enum TraceSampling: ServiceContextKey, Sendable {
    public typealias Value = TraceSampling
    /// Not yet decided: the context of a server call whose caller sent no trace, before its span
    /// starts (`TraceContext.untracedCall`). Its starter keeps that span in `TraceContext.span`
    /// while the call runs (`TraceContext.run(in:)`), so the span may hold what a context would.
    case untracedCall
    case sampled, unsampled
    /// A trace this process started and records nothing of, with the ids it drew for it.
    case unsampledRoot(UnsampledRoot)
    /// The same, the ids kept in the span of the call running now (`TraceContext.span`).
    case unsampledCallRoot

    /// The context of every unrecorded call root whose caller sent nothing.
    static let untracedCallRoot: ServiceContext = {
        var context = ServiceContext.topLevel
        context[TraceSampling.self] = .unsampledCallRoot
        return context
    }()

    /// The ids of the unrecorded root `context`'s trace began with; nil when it is recorded, the
    /// caller's, or (an unrecorded call's context outside its call) out of reach.
    static func unsampledRoot(of context: ServiceContext?) -> UnsampledRoot? {
        switch context?[TraceSampling.self] {
        case .unsampledRoot(let root)?: return root
        case .unsampledCallRoot?:
            guard case .unrecordedKeepingIDs(let root, _)? = TraceContext.span as? SampledSpan else { return nil }
            return root
        case .untracedCall?, .sampled?, .unsampled?, nil: return nil
        }
    }

    /// What a `traceparent`'s flags (the two hex digits after its third dash) say.
    init(traceParent: String) {
        let fields = traceParent.utf8.split(separator: UInt8(ascii: "-"), maxSplits: 4, omittingEmptySubsequences: false)
        let flags = fields.count >= 4 ? UInt8(Substring(fields[3]).prefix(2), radix: 16) : nil
        self = (flags ?? 0) & 1 == 1 ? .sampled : .unsampled
    }

    /// The root ratio `OTEL_TRACES_SAMPLER` and its argument ask for when it is
    /// `parentbased_traceidratio` (the argument a probability, 1 when absent or not one); nil for
    /// every other sampler, which swift-otel applies itself.
    public static func rootRatio(sampler: String?, argument: String?) -> Double? {
        guard sampler?.lowercased() == "parentbased_traceidratio" else { return nil }
        guard let ratio = argument.flatMap(Double.init), (0...1).contains(ratio) else { return 1 }
        return ratio
    }

    /// Whether `context`'s trace is one nobody records (so its spans need not be started).
    public static func isUnrecorded(_ context: ServiceContext) -> Bool {
        switch context[TraceSampling.self] {
        case .unsampled?, .unsampledRoot?, .unsampledCallRoot?: true
        case .untracedCall?, .sampled?, nil: false
        }
    }

    /// Log metadata for the calls swift-otel's provider knows nothing of: the unsampled roots.
    public static let loggingMetadata = Logger.MetadataProvider {
        guard let root = unsampledRoot(of: ServiceContext.current) else { return [:] }
        return ["trace_id": "\(root.traceIDHex)", "span_id": "\(root.spanIDHex)", "trace_flags": "0"]
    }
}

/// The ids of an unsampled root, derived from its draw (each draw is distinct, and so are the ids
/// mixed from it) and written out only when a log line or an outgoing call needs them.
public struct UnsampledRoot: Sendable {
    let draw: UInt64

    var traceID: (UInt64, UInt64) { (CheapRandom.mix(draw ^ 0x5851_F42D_4C95_7F2D), CheapRandom.mix(draw ^ 0x1405_7B7E_F767_814F)) }
    var spanID: UInt64 { CheapRandom.mix(draw ^ 0x2545_F491_4F6C_DD1D) | 1 }
    var traceIDHex: String { Self.hex([traceID.0, traceID.1]) }
    var spanIDHex: String { Self.hex([spanID]) }
    /// `00-<trace id>-<span id>-00`: version 0, not sampled.
    var traceParent: String { "00-\(traceIDHex)-\(spanIDHex)-00" }

    private static func hex(_ values: [UInt64]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(16 * values.count)
        for value in values {
            for shift in stride(from: 60, through: 0, by: -4) { text.append(digits[Int((value >> UInt64(shift)) & 0xF)]) }
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// Splitmix64 over an atomic counter seeded from the system's random source: distinct, evenly
/// spread 64-bit values without a system call or a lock. Not for secrets; trace ids and sampling
/// draws need only be spread, and these are never used to authorize anything.
final class CheapRandom: Sendable {
    private let state: Atomic<UInt64>

    init() {
        var system = SystemRandomNumberGenerator()
        state = Atomic(system.next())
    }

    func next() -> UInt64 {
        Self.mix(state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue)
    }

    /// Splitmix64's finalizer: a bijection that spreads every bit of its input over its output.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
