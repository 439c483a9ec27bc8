import Foundation
import NIOCore

/// Writes an `Encodable` message straight into a `ByteBuffer` as compact JSON.
///
/// Why: Foundation's `JSONEncoder` builds a value tree and a `Data` per call, which cost a sixth
/// of a small call's server time. This writer streams instead. It covers what messages do:
/// keyed and unkeyed containers, primitives, optionals (absent, never `null`), dates (RFC 3339)
/// and bytes (base64). A shape it does not stream (nested containers, super encoders) throws
/// `Unsupported`, and `ProtoJSON.encode` falls back to Foundation for that message.
struct StreamingJSONEncoder {
    struct Unsupported: Error {}

    static func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws {
        let writer = JSONWriter()
        try writer.writeValue(value)
        buffer.writeBytes(writer.bytes)
    }
}

/// The output and the encoder state shared by every container of one message.
private final class JSONWriter {
    var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(128)
    }

    func writeValue<Value: Encodable>(_ value: Value) throws {
        switch value {
        case let string as String: writeString(string)
        case let bool as Bool: bytes.append(contentsOf: bool ? Array("true".utf8) : Array("false".utf8))
        case let date as Date: writeString(date.formatted(ProtoJSON.timestampStyle))
        case let data as Data: writeString(data.base64EncodedString())
        case let number as Int: writeInteger(number)
        case let number as Int32: writeInteger(number)
        case let number as Int64: writeInteger(number)
        case let number as UInt32: writeInteger(number)
        case let number as UInt64: writeInteger(number)
        case let number as Double: try writeFloating(number)
        case let number as Float: try writeFloating(Double(number))
        default:
            let encoder = StreamingEncoder(writer: self)
            try value.encode(to: encoder)
            try encoder.finish()
        }
    }

    func writeString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            // Most strings need no escaping: copy them whole.
            if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                bytes.append(contentsOf: utf8)
            } else {
                bytes.append(contentsOf: Self.escaped(utf8))
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    private static func escaped(_ utf8: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 8)
        let hex = Array("0123456789abcdef".utf8)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x00..<0x20:
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: out.append(byte)
            }
        }
        return out
    }

    func writeInteger<Number: BinaryInteger>(_ number: Number) {
        bytes.append(contentsOf: String(number).utf8)
    }

    func writeFloating(_ number: Double) throws {
        guard number.isFinite else {
            throw EncodingError.invalidValue(number, .init(codingPath: [], debugDescription: "JSON has no \(number)"))
        }
        if number == number.rounded(), abs(number) < 1e15 {
            writeInteger(Int64(number))
        } else {
            bytes.append(contentsOf: "\(number)".utf8)
        }
    }
}

/// The `Encoder` for one value. Its container opens on first use and is closed by `finish()`,
/// called by whoever asked the value to encode itself.
private final class StreamingEncoder: Encoder {
    enum Container {
        case none
        case keyed(wroteField: Bool)
        case unkeyed(count: Int)
        case single
    }

    let writer: JSONWriter
    var container = Container.none
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(writer: JSONWriter) {
        self.writer = writer
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .none = container {
            writer.bytes.append(UInt8(ascii: "{"))
            container = .keyed(wroteField: false)
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .none = container {
            writer.bytes.append(UInt8(ascii: "["))
            container = .unkeyed(count: 0)
        }
        return UnkeyedContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(encoder: self)
    }

    /// Closes the open container; a value that wrote nothing becomes `{}`.
    func finish() throws {
        switch container {
        case .none: writer.bytes.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")])
        case .keyed: writer.bytes.append(UInt8(ascii: "}"))
        case .unkeyed: writer.bytes.append(UInt8(ascii: "]"))
        case .single: break
        }
    }

    /// Writes `"key":` with the comma a field after the first needs.
    func beginField(_ key: String) throws {
        guard case .keyed(let wroteField) = container else { throw StreamingJSONEncoder.Unsupported() }
        if wroteField { writer.bytes.append(UInt8(ascii: ",")) }
        container = .keyed(wroteField: true)
        writer.writeString(key)
        writer.bytes.append(UInt8(ascii: ":"))
    }

    func beginElement() throws {
        guard case .unkeyed(let count) = container else { throw StreamingJSONEncoder.Unsupported() }
        if count > 0 { writer.bytes.append(UInt8(ascii: ",")) }
        container = .unkeyed(count: count + 1)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: StreamingEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    /// proto3 JSON never writes `null`: an unset field is left out.
    mutating func encodeNil(forKey key: Key) throws {}

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encoder.beginField(key.stringValue)
        try encoder.writer.writeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(UnsupportedKeyed<NestedKey>())
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        UnsupportedUnkeyed()
    }

    mutating func superEncoder() -> any Encoder { UnsupportedEncoder() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { UnsupportedEncoder() }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: StreamingEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int {
        if case .unkeyed(let count) = encoder.container { return count }
        return 0
    }

    mutating func encodeNil() throws {
        try encoder.beginElement()
        encoder.writer.bytes.append(contentsOf: "null".utf8)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.beginElement()
        try encoder.writer.writeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(UnsupportedKeyed<NestedKey>())
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { UnsupportedUnkeyed() }
    mutating func superEncoder() -> any Encoder { UnsupportedEncoder() }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let encoder: StreamingEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws {
        throw StreamingJSONEncoder.Unsupported()
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        guard case .none = encoder.container else { throw StreamingJSONEncoder.Unsupported() }
        encoder.container = .single
        try encoder.writer.writeValue(value)
    }
}

/// Stand-ins for the shapes the streaming writer does not handle: any use of them fails the
/// streaming attempt, and the message is encoded by Foundation instead.
private struct UnsupportedKeyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    var codingPath: [any CodingKey] { [] }
    mutating func encodeNil(forKey key: Key) throws { throw StreamingJSONEncoder.Unsupported() }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { throw StreamingJSONEncoder.Unsupported() }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(UnsupportedKeyed<NestedKey>())
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { UnsupportedUnkeyed() }
    mutating func superEncoder() -> any Encoder { UnsupportedEncoder() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { UnsupportedEncoder() }
}

private struct UnsupportedUnkeyed: UnkeyedEncodingContainer {
    var codingPath: [any CodingKey] { [] }
    var count: Int { 0 }
    mutating func encodeNil() throws { throw StreamingJSONEncoder.Unsupported() }
    mutating func encode<T: Encodable>(_ value: T) throws { throw StreamingJSONEncoder.Unsupported() }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(UnsupportedKeyed<NestedKey>())
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { UnsupportedUnkeyed() }
    mutating func superEncoder() -> any Encoder { UnsupportedEncoder() }
}

private struct UnsupportedEncoder: Encoder {
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { KeyedEncodingContainer(UnsupportedKeyed<Key>()) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { UnsupportedUnkeyed() }
    func singleValueContainer() -> any SingleValueEncodingContainer { UnsupportedSingle() }
}

private struct UnsupportedSingle: SingleValueEncodingContainer {
    var codingPath: [any CodingKey] { [] }
    mutating func encodeNil() throws { throw StreamingJSONEncoder.Unsupported() }
    mutating func encode<T: Encodable>(_ value: T) throws { throw StreamingJSONEncoder.Unsupported() }
}
