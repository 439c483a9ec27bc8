import Logging
import OTel
import Testing
import Tracing

@testable import ConnectTransport

/// The root sampler's rules, around swift-otel's real tracer (never run, so nothing is exported):
/// which spans record, and what the services called next are told.
@Suite struct RootSamplingTests {
    static func tracer(ratio: Double) throws -> some Tracer {
        RootSamplingTracer(base: try OTel.makeTracingBackend().factory, ratio: ratio)
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
        // Sampled, a call root is swift-otel's span like any other.
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

    @Test func onlyTheParentBasedRatioSamplerIsDecidedHere() {
        #expect(TraceSampling.rootRatio(sampler: "parentbased_traceidratio", argument: "0.01") == 0.01)
        #expect(TraceSampling.rootRatio(sampler: "PARENTBASED_TRACEIDRATIO", argument: nil) == 1)
        #expect(TraceSampling.rootRatio(sampler: "parentbased_traceidratio", argument: "2") == 1)
        #expect(TraceSampling.rootRatio(sampler: "parentbased_traceidratio", argument: "one percent") == 1)
        #expect(TraceSampling.rootRatio(sampler: "traceidratio", argument: "0.5") == nil)
        #expect(TraceSampling.rootRatio(sampler: "parentbased_always_on", argument: nil) == nil)
        #expect(TraceSampling.rootRatio(sampler: nil, argument: nil) == nil)
    }
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
