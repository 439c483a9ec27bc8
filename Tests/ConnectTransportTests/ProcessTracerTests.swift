import Logging
import Synchronization
import Testing
import Tracing

@testable import ConnectTransport

/// The process tracer's rules: which spans record and what they hold when they end, and what the
/// services called next are told.
@Suite struct ProcessTracerTests {
    static func tracer(ratio: Double, sink: SpanCollector = SpanCollector()) throws -> ProcessTracer {
        ProcessTracer(sampler: .parentBased(ratio: ratio), sink: sink)
    }

    /// The `traceparent` a call made inside `span` would carry.
    static func traceParent(of span: some Span, in tracer: some Tracer) -> String? {
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: DictionaryInjector())
        return headers["traceparent"]
    }

    static func extracted(_ traceParent: String, by tracer: some Tracer) -> ServiceContext {
        var context = ServiceContext.topLevel
        tracer.extract(["traceparent": traceParent], into: &context, using: DictionaryExtractor())
        return context
    }

    @Test func anUnsampledRootRecordsNothingAndTellsTheCalledServicesSo() throws {
        let tracer = try Self.tracer(ratio: 0)
        let root = tracer.startSpan("root", context: .topLevel, ofKind: .server)
        #expect(!root.isRecording)
        let sent = try #require(Self.traceParent(of: root, in: tracer))
        let fields = sent.split(separator: "-").map(String.init)
        #expect(fields.count == 4 && fields[0] == "00" && fields[1].count == 32 && fields[2].count == 16 && fields[3] == "00", "\(sent)")
        #expect(fields[1] != String(repeating: "0", count: 32) && fields[2] != String(repeating: "0", count: 16))

        // What it starts records nothing and goes on naming the same trace.
        let child = tracer.startSpan("child", context: root.context, ofKind: .client)
        #expect(!child.isRecording)
        #expect(Self.traceParent(of: child, in: tracer) == sent)
        // Its log lines carry the ids it sends.
        let metadata = ServiceContext.$current.withValue(root.context) { TraceSampling.loggingMetadata.get() }
        #expect(metadata["trace_id"] == .string(fields[1]) && metadata["span_id"] == .string(fields[2]))
        // Another root is another trace.
        let other = Self.traceParent(of: tracer.startSpan("root", context: .topLevel, ofKind: .server), in: tracer)
        #expect(other?.split(separator: "-")[1] != fields[1][...])
    }

    /// A server call's root (`TraceContext.untracedCall`, run in `TraceContext.run(in:)`): its ids
    /// live in the span, and everything inside the call still names them.
    @Test func anUnsampledCallRootKeepsItsIdsInTheCallsSpan() async throws {
        let tracer = try Self.tracer(ratio: 0)
        var tenant = TraceContext.untracedCall
        tenant[Tenant.self] = "blue"
        for parent in [TraceContext.untracedCall, tenant] {
            let call = tracer.startSpan("call", context: parent, ofKind: .server)
            #expect(!call.isRecording)
            let inside = await TraceContext.run(in: call) { () async -> (sent: String?, child: String?, logged: Logger.Metadata) in
                var sent: [String: String] = [:]
                tracer.inject(ServiceContext.current ?? .topLevel, into: &sent, using: DictionaryInjector())
                let child = tracer.startSpan("transaction", context: ServiceContext.current ?? .topLevel, ofKind: .client)
                #expect(!child.isRecording && TraceSampling.isUnrecorded(child.context))
                // Even where the call's span is not the one kept (background work it starts, say).
                let childSent = TraceContext.$span.withValue(child) { Self.traceParent(of: child, in: tracer) }
                #expect(ServiceContext.current?[Tenant.self] == parent[Tenant.self], "what the call's context held is gone")
                return (sent["traceparent"], childSent, TraceSampling.loggingMetadata.get())
            }
            let sent = try #require(inside.sent)
            let fields = sent.split(separator: "-").map(String.init)
            #expect(fields.count == 4 && fields[0] == "00" && fields[1].count == 32 && fields[2].count == 16 && fields[3] == "00", "\(sent)")
            #expect(inside.child == sent)
            #expect(inside.logged["trace_id"] == .string(fields[1]) && inside.logged["span_id"] == .string(fields[2]))
            // The next call is another trace.
            let next = tracer.startSpan("call", context: parent, ofKind: .server)
            let nextSent = await TraceContext.run(in: next) { () async -> String? in
                var sent: [String: String] = [:]
                tracer.inject(ServiceContext.current ?? .topLevel, into: &sent, using: DictionaryInjector())
                return sent["traceparent"]
            }
            #expect(nextSent != nil && nextSent?.split(separator: "-")[1] != fields[1][...])
        }
        // Sampled, a call root is a recorded span like any other.
        let every = try Self.tracer(ratio: 1)
        let recorded = every.startSpan("call", context: TraceContext.untracedCall, ofKind: .server)
        #expect(recorded.isRecording && every.startSpan("transaction", context: recorded.context, ofKind: .client).isRecording)
    }

    @Test func aCallersFlagDecidesWhateverTheRatio() throws {
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        for ratio in [0.0, 1.0] {
            let tracer = try Self.tracer(ratio: ratio)
            let sampled = tracer.startSpan("call", context: Self.extracted("00-\(traceID)-00f067aa0ba902b7-01", by: tracer), ofKind: .server)
            #expect(sampled.isRecording, "ratio \(ratio): a sampled caller's call is not recorded")
            let sent = try #require(Self.traceParent(of: sampled, in: tracer))
            #expect(sent.hasPrefix("00-\(traceID)-") && sent.hasSuffix("-01") && !sent.contains("00f067aa0ba902b7"), "\(sent)")
            #expect(tracer.startSpan("transaction", context: sampled.context, ofKind: .client).isRecording)

            let unsampled = tracer.startSpan("call", context: Self.extracted("00-\(traceID)-00f067aa0ba902b7-00", by: tracer), ofKind: .server)
            #expect(!unsampled.isRecording, "ratio \(ratio): an unsampled caller's call is recorded")
            #expect(Self.traceParent(of: unsampled, in: tracer) == "00-\(traceID)-00f067aa0ba902b7-00")
            #expect(!tracer.startSpan("transaction", context: unsampled.context, ofKind: .client).isRecording)
        }
    }

    @Test func rootsAreSampledAtTheRatio() throws {
        let every = try Self.tracer(ratio: 1)
        let root = every.startSpan("root", context: .topLevel, ofKind: .server)
        #expect(root.isRecording && every.startSpan("child", context: root.context, ofKind: .internal).isRecording)
        #expect(try !Self.tracer(ratio: 0).startSpan("root", context: .topLevel, ofKind: .server).isRecording)

        let quarter = try Self.tracer(ratio: 0.25)
        let recorded = (0..<4000).count(where: { _ in quarter.startSpan("root", context: .topLevel, ofKind: .server).isRecording })
        #expect((800...1200).contains(recorded), "\(recorded) of 4000 roots recorded at 25%")
    }

    @Test func samplersByName() throws {
        #expect(TraceSampler(name: "parentbased_traceidratio", argument: "0.01") == .parentBased(ratio: 0.01))
        #expect(TraceSampler(name: "PARENTBASED_TRACEIDRATIO", argument: nil) == .parentBased(ratio: 1))
        #expect(TraceSampler(name: "parentbased_traceidratio", argument: "2") == .parentBased(ratio: 1))
        #expect(TraceSampler(name: "parentbased_always_on", argument: nil) == .parentBasedAlwaysOn)
        #expect(TraceSampler(name: "jaeger_remote", argument: nil) == nil)

        // The samplers that do not follow a caller decide a caller's trace by its id.
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        for (name, recorded) in [("always_off", false), ("always_on", true)] {
            let tracer = ProcessTracer(sampler: try #require(TraceSampler(name: name, argument: nil)), sink: SpanCollector())
            for flags in ["00", "01"] {
                let call = tracer.startSpan("call", context: Self.extracted("00-\(traceID)-00f067aa0ba902b7-\(flags)", by: tracer), ofKind: .server)
                #expect(call.isRecording == recorded, "\(name), caller's flags \(flags)")
            }
            #expect(tracer.startSpan("root", context: .topLevel, ofKind: .server).isRecording == recorded)
        }
        // traceidratio: the trace id's low 64 bits against the ratio, the same in every process.
        let half = ProcessTracer(sampler: try #require(TraceSampler(name: "traceidratio", argument: "0.5")), sink: SpanCollector())
        let low = half.startSpan(
            "call", context: Self.extracted("00-ffffffffffffffff0000000000000001-00f067aa0ba902b7-00", by: half), ofKind: .server)
        let high = half.startSpan(
            "call", context: Self.extracted("00-0000000000000000ffffffffffffffff-00f067aa0ba902b7-01", by: half), ofKind: .server)
        #expect(low.isRecording && !high.isRecording)
    }

    @Test func traceParentsAreReadAsTheSpecSays() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let parsed = TraceParent(valid)
        #expect(parsed?.sampled == true && parsed?.identity.spanIDHex == "00f067aa0ba902b7" && parsed?.header == valid)
        #expect(TraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")?.sampled == false)
        // A later version: its first four fields, if what follows starts with a dash.
        #expect(TraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later")?.sampled == true)
        #expect(TraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") != nil)
        for invalid in [
            "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"
        ] {
            #expect(TraceParent(invalid) == nil, "\(invalid)")
        }
    }

    @Test func recordedSpansReachTheSinkWithTheirParentsAndWhatTheyHold() throws {
        let sink = SpanCollector()
        let tracer = try Self.tracer(ratio: 1, sink: sink)
        var caller = ServiceContext.topLevel
        tracer.extract(
            ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=abc"], into: &caller,
            using: DictionaryExtractor())
        let call = tracer.startSpan("call", context: caller, ofKind: .server)
        call.attributes["rpc.method"] = "Check"
        call.attributes["attempts"] = 2
        let child = tracer.startSpan("sqlite read", context: call.context, ofKind: .client)
        // What the child's calls carry: its own span, the caller's trace state.
        var sent: [String: String] = [:]
        tracer.inject(child.context, into: &sent, using: DictionaryInjector())
        #expect(sent["tracestate"] == "vendor=abc")
        let childID = try #require(child.context[TraceIdentity.self]).spanIDHex
        #expect(sent["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(childID)-01")
        let logged = ServiceContext.$current.withValue(child.context) { TraceSampling.loggingMetadata.get() }
        #expect(logged["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" && logged["span_id"] == .string(childID) && logged["trace_flags"] == "01")

        for index in 0..<(RecordedSpan.limit + 2) { child.addEvent(SpanEvent(name: "retry \(index)")) }
        child.setStatus(SpanStatus(code: .error))
        child.end()
        call.addLink(SpanLink(context: child.context, attributes: [:]))
        call.end()
        call.attributes["late"] = "ignored"
        call.end()  // once only

        let spans = sink.spans
        #expect(spans.map(\.name) == ["sqlite read", "call"])
        let (childSpan, callSpan) = (spans[0], spans[1])
        #expect(callSpan.parentSpanID == 0x00f0_67aa_0ba9_02b7 && childSpan.parentSpanID == callSpan.identity.spanID)
        #expect(callSpan.identity.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736" && childSpan.identity.traceID == callSpan.identity.traceID)
        #expect(callSpan.kind == .server && childSpan.kind == .client && callSpan.endNanoseconds >= callSpan.startNanoseconds)
        #expect(callSpan.attributes["rpc.method"]?.toSpanAttribute() == .string("Check") && callSpan.attributes["late"] == nil)
        #expect(childSpan.events.count == RecordedSpan.limit && childSpan.droppedEvents == 2 && childSpan.status?.code == .error)
        #expect(callSpan.links.first?.context[TraceIdentity.self]?.spanID == childSpan.identity.spanID)
        #expect(!call.isRecording)
    }

    @Test func withoutPropagationNoTraceIsReadOrSent() {
        let tracer = ProcessTracer(sampler: .parentBasedAlwaysOn, propagates: false, sink: SpanCollector())
        let context = Self.extracted("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", by: tracer)
        #expect(context[TraceIdentity.self] == nil)
        let root = tracer.startSpan("root", context: context, ofKind: .server)
        #expect(root.isRecording && Self.traceParent(of: root, in: tracer) == nil)
    }
}

/// The spans a tracer ends, in order.
final class SpanCollector: FinishedSpanSink {
    private let finished = Mutex<[FinishedSpan]>([])
    func record(_ span: FinishedSpan) { finished.withLock { $0.append(span) } }
    var spans: [FinishedSpan] { finished.withLock { $0 } }
}

/// Something a call's context holds besides its trace.
enum Tenant: ServiceContextKey {
    typealias Value = String
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
