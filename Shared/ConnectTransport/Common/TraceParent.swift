import Foundation
import Tracing

/// A span's place in its trace, kept in its context: the trace id, the span's own id (for a
/// caller's context, the caller's span), and the caller's `tracestate`, passed on unread.
public struct TraceIdentity: ServiceContextKey, Sendable, Equatable {
    public typealias Value = TraceIdentity

    public var traceID: (UInt64, UInt64)
    public var spanID: UInt64
    public var traceState: String?

    public init(traceID: (UInt64, UInt64), spanID: UInt64, traceState: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.traceState = traceState
    }

    public var traceIDHex: String { Self.hex([traceID.0, traceID.1]) }
    public var spanIDHex: String { Self.hex([spanID]) }

    public static func == (left: TraceIdentity, right: TraceIdentity) -> Bool {
        left.traceID == right.traceID && left.spanID == right.spanID && left.traceState == right.traceState
    }

    /// Lowercase hex, 16 digits a value.
    static func hex(_ values: [UInt64]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(16 * values.count)
        for value in values {
            for shift in stride(from: 60, through: 0, by: -4) { text.append(digits[Int((value >> UInt64(shift)) & 0xF)]) }
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// A W3C `traceparent` header (Trace Context level 1): `00-<32 hex trace id>-<16 hex parent
/// id>-<2 hex flags>`, lowercase. Read as the spec says: a later version is read by its first four
/// fields (what follows them must start with a dash), version `ff` and all-zero ids are invalid,
/// and an invalid header is ignored (the call starts a trace of its own).
public struct TraceParent: Equatable, Sendable {
    public var identity: TraceIdentity
    public var sampled: Bool

    public init(identity: TraceIdentity, sampled: Bool) {
        self.identity = identity
        self.sampled = sampled
    }

    public init?(_ header: String) {
        let bytes = Array(header.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
            let version = Self.hexValue(bytes[0..<2]), version != 0xFF,
            let traceHigh = Self.hexValue(bytes[3..<19]), let traceLow = Self.hexValue(bytes[19..<35]),
            let spanID = Self.hexValue(bytes[36..<52]), let flags = Self.hexValue(bytes[53..<55]),
            traceHigh | traceLow != 0, spanID != 0
        else { return nil }
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        identity = TraceIdentity(traceID: (traceHigh, traceLow), spanID: spanID)
        sampled = flags & 1 == 1
    }

    /// The header's value, version 00.
    public var header: String { "00-\(identity.traceIDHex)-\(identity.spanIDHex)-\(sampled ? "01" : "00")" }

    /// A caller's `tracestate`, passed on as it came when it is plausible: at most 512 characters
    /// (the spec's limit a vendor may cut at), printable ASCII only. Nil otherwise.
    static func acceptedTraceState(_ value: String) -> String? {
        let trimmed = value.utf8.count <= 512 ? value.trimmingCharacters(in: .whitespaces) : ""
        guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else { return nil }
        return trimmed
    }

    /// Lowercase hex digits as a number; nil for anything else (uppercase included, as the spec asks).
    private static func hexValue(_ digits: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(digit - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(digit - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }
}
