import Foundation
import NIOCore
import NIOFoundationCompat

/// The proto3 JSON mapping as this system writes and reads it: lowerCamelCase keys (proto field
/// names accepted on input), timestamps in RFC 3339 UTC, unknown fields ignored.
public enum ProtoJSON {
    /// Decodes a request or response body. An empty body is the empty message `{}`.
    /// Errors name the offending field, so the caller knows what to fix.
    public static func decode<Message: Decodable>(_ type: Message.Type, from buffer: ByteBuffer) throws(RPCError) -> Message {
        do {
            if isEmptyObject(buffer) {
                return try Message(from: EmptyMessageDecoder())
            }
            if let message = FlatMessageDecoder.decode(Message.self, from: buffer) {
                return message
            }
            return try decoder.decode(Message.self, from: buffer)
        } catch let error as DecodingError {
            throw RPCError(.invalidArgument, describe(error))
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.invalidArgument, "the body is not valid JSON: \(error)")
        }
    }

    /// Encodes a message as compact JSON.
    public static func encode<Message: Encodable>(_ message: Message, allocator: ByteBufferAllocator = .init()) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 128)
        do {
            try StreamingJSONEncoder.encode(message, into: &buffer)
        } catch is StreamingJSONEncoder.Unsupported {
            buffer.clear()
            try encoder.encode(message, into: &buffer)
        }
        return buffer
    }

    /// True for an empty body and for `{}` (with optional white space): the empty message.
    static func isEmptyObject(_ buffer: ByteBuffer) -> Bool {
        guard buffer.readableBytes <= 16 else { return false }
        var meaningful = buffer.readableBytesView.lazy.filter { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }.makeIterator()
        switch (meaningful.next(), meaningful.next(), meaningful.next()) {
        case (nil, nil, nil): return true
        case (UInt8(ascii: "{"), UInt8(ascii: "}"), nil): return true
        default: return false
        }
    }

    /// Configured once: both coders are safe to share between threads.
    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom(decodeTimestamp)
        return decoder
    }()

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom(encodeTimestamp)
        return encoder
    }()

    private static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            let names = path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return names.isEmpty ? "the message" : "field '\(names.joined(separator: ".").replacingOccurrences(of: ".[", with: "["))'"
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(field(context.codingPath)): expected \(jsonKind(type))"
        case .valueNotFound(let type, let context):
            return "\(field(context.codingPath)): expected \(jsonKind(type)), got null"
        case .keyNotFound(let key, let context):
            return "\(field(context.codingPath + [key])) is required"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return "the body is not valid JSON (UTF-8 encoded): \(context.debugDescription)"
            }
            return "\(field(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the body does not match the message: \(error)"
        }
    }

    private static func jsonKind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int32.Type, is UInt32.Type, is Double.Type, is Float.Type: return "a number"
        case is Int64.Type, is UInt64.Type: return "an integer (number or decimal string)"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            return "an object"
        }
    }

    static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let timestamp = Date.ISO8601FormatStyle()

    private static func encodeTimestamp(_ date: Date, _ encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(date.formatted(timestampStyle))
    }

    private static func decodeTimestamp(_ decoder: any Decoder) throws -> Date {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        // The style that fits is tried first: a failed parse costs as much as several good ones.
        let (likely, other) = text.contains(".") ? (timestampStyle, timestamp) : (timestamp, timestampStyle)
        if let date = (try? likely.parse(text)) ?? (try? other.parse(text)) {
            return date
        }
        throw DecodingError.dataCorruptedError(
            in: container, debugDescription: "expected an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")
    }
}
