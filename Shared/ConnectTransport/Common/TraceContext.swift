import NGHTTP2
import RPCCore
import Tracing

/// W3C trace context (`traceparent`, `tracestate`) in and out of our header lists, through
/// whatever instrument the process bootstrapped (none: nothing is read or written).
public enum TraceContext {
    /// The caller's trace, read from request headers (names lowercased) by `instrument` (a server
    /// passes the tracer it looked up once) into `start`; `start` itself when there is none or it
    /// does not parse.
    public static func extracted(
        from headers: [(name: String, value: String)], into start: ServiceContext = .topLevel,
        by instrument: any Instrument = InstrumentationSystem.instrument
    ) -> ServiceContext {
        var context = start
        instrument.extract(headers, into: &context, using: HeaderListExtractor())
        return context
    }

    /// Where the span of a call whose caller sent no trace starts: the top level, marked so that a
    /// tracer knows its starter runs it in `run(in:)` (the root sampler keeps ids in such a span).
    public static let untracedCall: ServiceContext = {
        var context = ServiceContext.topLevel
        context[TraceSampling.self] = .untracedCall
        return context
    }()

    /// Runs `body` inside `span`: its context is current (its log lines and the calls it makes
    /// carry the trace) and it is `span` (its code may describe it).
    public static func run<Result>(in span: any Span, _ body: () async -> Result) async -> Result {
        await ServiceContext.$current.withValue(span.context) {
            await $span.withValue(span) { await body() }
        }
    }

    /// `context`'s trace as a `traceparent` value, for work recorded now and done later (an email
    /// to send, a step owed) whose spans link back to it; nil outside a trace.
    public static func traceParent(of context: ServiceContext? = ServiceContext.current) -> String? {
        guard let context else { return nil }
        var fields: [HTTPField] = []
        InstrumentationSystem.instrument.inject(context, into: &fields, using: HTTPFieldInjector())
        return fields.first { $0.name == "traceparent" }?.value
    }

    /// The trace a stored `traceparent` names, as a context to link a span to; nil when there is
    /// none or tracing is off.
    public static func context(ofTraceParent traceParent: String?) -> ServiceContext? {
        guard let traceParent, !traceParent.isEmpty else { return nil }
        let context = extracted(from: [("traceparent", traceParent)])
        return Self.traceParent(of: context) == nil ? nil : context
    }

    static func inject(_ context: ServiceContext, into headers: inout [HTTPField]) {
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HTTPFieldInjector())
    }

    /// The span of the call (or background step) running now, which its code may describe.
    @TaskLocal public static var span: (any Span)?

    /// Names the organization the call running now is about, on its span (`organization.id`): what
    /// an operator searches by. Nothing outside a call or when the span is not recorded; at most
    /// 64 characters (ids are UUIDs; a caller's junk is not worth exporting whole).
    public static func annotate(organizationID: String) {
        guard let span, span.isRecording else { return }
        span.attributes["organization.id"] = String(organizationID.prefix(64))
    }
}

/// Reads a header from a lowercased header list.
struct HeaderListExtractor: Extractor {
    func extract(key: String, from carrier: [(name: String, value: String)]) -> String? {
        // Compared byte by byte, ASCII letters folded: no string made on every call, and names
        // of another length (most of them) are passed over at once.
        let key = key.utf8
        return carrier.first { header in
            header.name.utf8.count == key.count && zip(header.name.utf8, key).allSatisfy { $0 == $1 || $0 == Self.lowercased($1) }
        }?.value
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }
}

/// Appends a header to an HTTP/2 header list.
struct HTTPFieldInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [HTTPField]) {
        carrier.append(HTTPField(name: key.lowercased(), value: value))
    }
}

extension Span {
    /// Records an RPC's method and how it ended (OpenTelemetry's RPC conventions): its Connect
    /// code, and an error status for the codes that mean the service failed rather than the caller.
    func recordRPC(path: String, code: ConnectCode?) {
        guard isRecording else { return }
        let parts = path.split(separator: "/")
        attributes["rpc.system"] = "connect_rpc"
        attributes["rpc.service"] = parts.first.map(String.init)
        attributes["rpc.method"] = parts.last.map(String.init)
        attributes["rpc.connect_rpc.error_code"] = code?.rawValue
        switch code {
        case .internal?, .unknown?, .unavailable?, .deadlineExceeded?, .dataLoss?: setStatus(SpanStatus(code: .error))
        default: break
        }
    }
}
