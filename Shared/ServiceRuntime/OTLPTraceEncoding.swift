import ConnectTransport
import Tracing

/// An OTLP `ExportTraceServiceRequest` (opentelemetry-proto's
/// `collector/trace/v1/trace_service.proto`) in protocol buffers' binary form: one resource, one
/// instrumentation scope, the spans of one batch. Written by hand, field by field, since only
/// this one message is ever sent; the tests decode it with opentelemetry-proto's own classes.
enum OTLPTraceEncoding {
    static let scopeName = "marketplace-services"
    /// Attributes a span exports at most (OpenTelemetry's default limit); the rest are counted.
    static let attributeLimit = 128

    static func request(resource: [(key: String, value: String)], spans: some Collection<FinishedSpan>) -> [UInt8] {
        var request = ProtobufWriter()
        request.message(1) { resourceSpans in  // ResourceSpans
            resourceSpans.message(1) { resourceMessage in  // Resource
                for (key, value) in resource { resourceMessage.message(1) { $0.keyValue(key, .string(value)) } }
            }
            resourceSpans.message(2) { scopeSpans in  // ScopeSpans
                scopeSpans.message(1) { $0.string(1, scopeName) }  // InstrumentationScope.name
                for span in spans { scopeSpans.message(2) { $0.span(span) } }
            }
        }
        return request.bytes
    }
}

/// Protocol buffers' wire format, as much as an OTLP trace export needs.
struct ProtobufWriter {
    var bytes: [UInt8] = []

    private enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    private mutating func tag(_ field: UInt64, _ type: WireType) { varint(field << 3 | type.rawValue) }

    private mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private mutating func littleEndian(_ value: UInt64, count: Int) {
        for index in 0..<count { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index))) }
    }

    /// A varint field; zero, proto3's default, is left out unless it is a oneof's value.
    mutating func uint(_ field: UInt64, _ value: UInt64, always: Bool = false) {
        guard always || value != 0 else { return }
        tag(field, .varint)
        varint(value)
    }

    mutating func fixed64(_ field: UInt64, _ value: UInt64) {
        tag(field, .fixed64)
        littleEndian(value, count: 8)
    }

    mutating func bytes(_ field: UInt64, _ value: some Collection<UInt8>) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: UInt64, _ value: String, always: Bool = false) {
        guard always || !value.isEmpty else { return }
        bytes(field, value.utf8)
    }

    /// An embedded message, written by `body` into a writer of its own and sent length-prefixed.
    mutating func message(_ field: UInt64, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }

    /// Ids big-endian, as OTLP sends them: the trace id's high half first.
    private static func idBytes(_ values: UInt64...) -> [UInt8] {
        values.flatMap { value in (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) } }
    }

    mutating func span(_ span: FinishedSpan) {
        bytes(1, Self.idBytes(span.identity.traceID.0, span.identity.traceID.1))
        bytes(2, Self.idBytes(span.identity.spanID))
        string(3, span.identity.traceState ?? "")
        if let parent = span.parentSpanID { bytes(4, Self.idBytes(parent)) }
        string(5, span.name, always: true)
        uint(6, Self.kind(span.kind))
        fixed64(7, span.startNanoseconds)
        fixed64(8, span.endNanoseconds)
        uint(10, UInt64(attributes(9, span.attributes)))
        for event in span.events {
            message(11) { eventMessage in
                eventMessage.fixed64(1, event.nanosecondsSinceEpoch)
                eventMessage.string(2, event.name)
                eventMessage.uint(4, UInt64(eventMessage.attributes(3, event.attributes)))
            }
        }
        uint(12, UInt64(span.droppedEvents))
        var droppedLinks = span.droppedLinks
        for link in span.links {
            guard let identity = link.context[TraceIdentity.self] else {
                droppedLinks += 1  // a context outside any trace names no span
                continue
            }
            message(13) { linkMessage in
                linkMessage.bytes(1, Self.idBytes(identity.traceID.0, identity.traceID.1))
                linkMessage.bytes(2, Self.idBytes(identity.spanID))
                linkMessage.string(3, identity.traceState ?? "")
                linkMessage.uint(5, UInt64(linkMessage.attributes(4, link.attributes)))
            }
        }
        uint(14, UInt64(droppedLinks))
        if let status = span.status {
            message(15) { statusMessage in
                statusMessage.string(2, status.message ?? "")
                statusMessage.uint(3, status.code == .ok ? 1 : 2)
            }
        }
    }

    /// Writes up to `OTLPTraceEncoding.attributeLimit` attributes as repeated field `field`;
    /// returns how many were left out.
    mutating func attributes(_ field: UInt64, _ attributes: SpanAttributes) -> Int {
        var written = 0
        var dropped = 0
        attributes.forEach { key, value in
            guard written < OTLPTraceEncoding.attributeLimit else {
                dropped += 1
                return
            }
            written += 1
            message(field) { $0.keyValue(key, value) }
        }
        return dropped
    }

    /// A `KeyValue`: the key, and the value as an `AnyValue`.
    mutating func keyValue(_ key: String, _ value: SpanAttribute) {
        string(1, key, always: true)
        message(2) { $0.anyValue(value) }
    }

    private mutating func anyValue(_ value: SpanAttribute) {
        func array<Element>(_ elements: [Element], _ each: (Element) -> SpanAttribute) {
            message(5) { list in
                for element in elements { list.message(1) { $0.anyValue(each(element)) } }
            }
        }
        switch value {
        case .string(let text): string(1, text, always: true)
        case .bool(let flag): uint(2, flag ? 1 : 0, always: true)
        case .int32(let number): uint(3, UInt64(bitPattern: Int64(number)), always: true)
        case .int64(let number): uint(3, UInt64(bitPattern: number), always: true)
        case .double(let number): fixed64(4, number.bitPattern)
        case .stringArray(let texts): array(texts) { .string($0) }
        case .boolArray(let flags): array(flags) { .bool($0) }
        case .int32Array(let numbers): array(numbers) { .int32($0) }
        case .int64Array(let numbers): array(numbers) { .int64($0) }
        case .doubleArray(let numbers): array(numbers) { .double($0) }
        case .stringConvertible(let convertible): string(1, convertible.description, always: true)
        case .stringConvertibleArray(let convertibles): array(convertibles) { .string($0.description) }
        default: string(1, "\(value)", always: true)
        }
    }

    private static func kind(_ kind: SpanKind) -> UInt64 {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }
}
