import Foundation
import Logging
import Synchronization
import Tracing

/// The process's tracer: W3C trace context in and out, the sampler, and the spans it records,
/// each handed when it ends to a `FinishedSpanSink` (the exporter's queue).
///
/// Cheap by design, since it runs on every call: a trace this process starts is sampled by a
/// draw from a lock-free generator (no system call), and the ids of a trace nobody records are
/// derived from that draw only when a log line or an outgoing call needs them. A recorded span is
/// one object whose end appends it to the sink's queue: no task, no thread woken. (swift-otel
/// 1.6's tracer, which this replaced, handed every recorded span between three tasks and cost a
/// cheap call at 1% sampling 7% of its throughput.)
///
/// An unrecorded root keeps its ids in its context, or, when it is a server call's (started from
/// `TraceContext.untracedCall` and run in `TraceContext.run(in:)`), in the span alone, all such
/// calls sharing one context: no dictionary built per call.
public final class ProcessTracer: Tracer {
    private let sampler: TraceSampler
    private let propagates: Bool
    private let sink: any FinishedSpanSink
    private let draws = CheapRandom()

    /// `propagates` false (`OTEL_PROPAGATORS=none`): no trace is read from callers or sent on.
    public init(sampler: TraceSampler, propagates: Bool = true, sink: any FinishedSpanSink) {
        self.sampler = sampler
        self.propagates = propagates
        self.sink = sink
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> SampledSpan {
        let parent = context()
        let sampling = parent[TraceSampling.self]
        switch sampling {
        case .sampled?:
            if let parentID = parent[TraceIdentity.self] {
                let identity = TraceIdentity(traceID: parentID.traceID, spanID: draws.next() | 1, traceState: parentID.traceState)
                return .recorded(
                    RecordedSpan(
                        operationName, kind: kind, identity: identity, parentSpanID: parentID.spanID, context: parent,
                        start: instant().nanosecondsSinceEpoch, sink: sink))
            }
        case .unsampled?, .unsampledRoot?: return .unrecorded(NoOpTracer.NoOpSpan(context: parent))
        case .unsampledCallRoot?:
            // Its spans carry the root's ids on, wherever they are kept.
            guard let root = TraceSampling.unsampledRoot(of: parent) else { return .unrecorded(NoOpTracer.NoOpSpan(context: parent)) }
            return .unrecordedKeepingIDs(root, context: parent)
        case .untracedCall?, nil: break
        }
        // A root: its ids come from its draw, recorded or not.
        let root = RootDraw(draw: draws.next())
        guard sampler.samples(traceIDLow: root.traceID.1) else {
            var context = parent
            guard sampling == .untracedCall else {
                context[TraceSampling.self] = .unsampledRoot(root)
                return .unrecorded(NoOpTracer.NoOpSpan(context: context))
            }
            // A server call's: the ids, which stand for this span so that nothing exported names
            // them, stay in the span; its context is one all such calls share, unless it holds
            // something of the caller's besides.
            guard parent.count > 1 else { return .unrecordedKeepingIDs(root, context: TraceSampling.untracedCallRoot) }
            context[TraceSampling.self] = .unsampledCallRoot
            return .unrecordedKeepingIDs(root, context: context)
        }
        return .recorded(
            RecordedSpan(
                operationName, kind: kind, identity: root.identity, parentSpanID: nil, context: parent, start: instant().nanosecondsSinceEpoch,
                sink: sink))
    }

    @available(*, deprecated, message: "as LegacyTracer's")
    public func forceFlush() {}

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard propagates, let traceParent = extractor.extract(key: "traceparent", from: carrier),
            var parent = TraceParent(traceParent)
        else { return }
        parent.identity.traceState = extractor.extract(key: "tracestate", from: carrier).flatMap(TraceParent.acceptedTraceState)
        context[TraceIdentity.self] = parent.identity
        context[TraceSampling.self] = sampler.decision(forRemoteParentSampled: parent.sampled, traceIDLow: parent.identity.traceID.1)
    }

    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard propagates, let identity = TraceSampling.identity(of: context) else { return }
        let sampled = context[TraceSampling.self] == .sampled
        injector.inject(TraceParent(identity: identity, sampled: sampled).header, forKey: "traceparent", into: &carrier)
        if let traceState = identity.traceState { injector.inject(traceState, forKey: "tracestate", into: &carrier) }
    }
}

/// Which traces are recorded, as `OTEL_TRACES_SAMPLER` and its argument say: the ones whose trace
/// id falls under a ratio (1 for always_on, 0 for always_off), and for the `parentbased_` samplers
/// whatever a caller's `traceparent` flag says instead, when there is one. Within this process a
/// span follows its parent.
public struct TraceSampler: Equatable, Sendable {
    /// A trace is sampled when the low 64 bits of its id fall below this; `UInt64.max` samples every one.
    let threshold: UInt64
    /// Whether a caller's flag decides (the `parentbased_` samplers).
    public let followsCaller: Bool
    /// The sampler's name and ratio, for the log.
    public let description: String

    public static let parentBasedAlwaysOn = TraceSampler(ratio: 1, followsCaller: true, description: "parentbased_always_on")

    init(ratio: Double, followsCaller: Bool, description: String) {
        threshold = ratio >= 1 ? .max : UInt64(max(0, ratio) * 0x1p64)
        self.followsCaller = followsCaller
        self.description = description
    }

    public static func parentBased(ratio: Double) -> TraceSampler {
        TraceSampler(ratio: ratio, followsCaller: true, description: "parentbased_traceidratio \(ratio)")
    }

    /// The sampler a name (any case) and its argument ask for; nil for a name that is not one of
    /// the six the spec defines here. A ratio argument that is not a number from 0 to 1 counts as 1.
    public init?(name: String, argument: String?) {
        let name = name.lowercased()
        var ratio: Double
        switch name {
        case "always_on", "parentbased_always_on": ratio = 1
        case "always_off", "parentbased_always_off": ratio = 0
        case "traceidratio", "parentbased_traceidratio":
            ratio = argument.flatMap(Double.init).flatMap { (0...1).contains($0) ? $0 : nil } ?? 1
        default: return nil
        }
        let described = name.hasSuffix("traceidratio") ? "\(name) \(ratio)" : name
        self.init(ratio: ratio, followsCaller: name.hasPrefix("parentbased_"), description: described)
    }

    /// Whether a trace this process starts, or a caller's under a sampler that does not follow
    /// callers, is recorded.
    func samples(traceIDLow: UInt64) -> Bool { threshold == .max || traceIDLow < threshold }

    func decision(forRemoteParentSampled sampled: Bool, traceIDLow: UInt64) -> TraceSampling {
        (followsCaller ? sampled : samples(traceIDLow: traceIDLow)) ? .sampled : .unsampled
    }
}

/// A span the tracer started: recorded, or one nobody records. Small enough to sit in
/// `TraceContext.span` without a box of its own.
public enum SampledSpan: Span {
    case recorded(RecordedSpan)
    case unrecorded(NoOpTracer.NoOpSpan)
    /// In the trace of an unrecorded root whose ids its context does not hold: here they are.
    case unrecordedKeepingIDs(RootDraw, context: ServiceContext)

    public var context: ServiceContext {
        switch self {
        case .recorded(let span): return span.context
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

/// Whether the trace a context belongs to is recorded, as the sampler decided or the caller's
/// traceparent said.
public enum TraceSampling: ServiceContextKey, Sendable, Equatable {
    public typealias Value = TraceSampling
    /// Not yet decided: the context of a server call whose caller sent no trace, before its span
    /// starts (`TraceContext.untracedCall`). Its starter keeps that span in `TraceContext.span`
    /// while the call runs (`TraceContext.run(in:)`), so the span may hold what a context would.
    case untracedCall
    case sampled, unsampled
    /// A trace this process started and records nothing of, with the ids it drew for it.
    case unsampledRoot(RootDraw)
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
    static func unsampledRoot(of context: ServiceContext?) -> RootDraw? {
        switch context?[TraceSampling.self] {
        case .unsampledRoot(let root)?: return root
        case .unsampledCallRoot?:
            guard case .unrecordedKeepingIDs(let root, _)? = TraceContext.span as? SampledSpan else { return nil }
            return root
        case .untracedCall?, .sampled?, .unsampled?, nil: return nil
        }
    }

    /// Whether `context`'s trace is one nobody records (so its spans need not be started).
    public static func isUnrecorded(_ context: ServiceContext) -> Bool {
        switch context[TraceSampling.self] {
        case .unsampled?, .unsampledRoot?, .unsampledCallRoot?: true
        case .untracedCall?, .sampled?, nil: false
        }
    }

    /// The ids `context` stands for: its span's (for a caller's context, the caller's), or those an
    /// unrecorded root drew; nil outside a trace.
    static func identity(of context: ServiceContext) -> TraceIdentity? {
        context[TraceIdentity.self] ?? unsampledRoot(of: context)?.identity
    }

    /// `trace_id`, `span_id` and `trace_flags` (`01` recorded, `00` not) for every log line written
    /// in a trace: the span's own ids, the caller's inside an unrecorded call, a root's it drew.
    public static let loggingMetadata = Logger.MetadataProvider {
        guard let context = ServiceContext.current, let identity = identity(of: context) else { return [:] }
        let flags = context[TraceSampling.self] == .sampled ? "01" : "00"
        return ["trace_id": "\(identity.traceIDHex)", "span_id": "\(identity.spanIDHex)", "trace_flags": "\(flags)"]
    }
}

/// The ids of a root this process starts, derived from its draw (each draw is distinct, and so
/// are the ids mixed from it) and, when nobody records it, written out only when a log line or an
/// outgoing call needs them.
public struct RootDraw: Sendable, Equatable {
    let draw: UInt64

    var traceID: (UInt64, UInt64) { (CheapRandom.mix(draw ^ 0x5851_F42D_4C95_7F2D), CheapRandom.mix(draw ^ 0x1405_7B7E_F767_814F)) }
    var identity: TraceIdentity { TraceIdentity(traceID: traceID, spanID: CheapRandom.mix(draw ^ 0x2545_F491_4F6C_DD1D) | 1) }
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
