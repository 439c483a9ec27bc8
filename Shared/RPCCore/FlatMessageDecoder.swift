import NIOCore

/// A fast path for the commonest request shape: a flat JSON object whose values are plain ASCII
/// strings, such as `{"organizationId":"..."}`. It parses the bytes itself and serves only
/// string fields; anything else (escapes, non-ASCII, numbers, nesting, snake_case keys,
/// duplicates, a missing required field, any error at all) makes `decode` return nil, and the
/// caller decodes with Foundation, whose answers and error messages stay the reference.
enum FlatMessageDecoder {
    static func decode<Message: Decodable>(_ type: Message.Type, from buffer: ByteBuffer) -> Message? {
        guard buffer.readableBytes <= 4096, let fields = parse(buffer) else { return nil }
        return try? Message(from: FlatDecoder(fields: fields))
    }

    /// The object's fields, or nil if it is not of the simple shape.
    static func parse(_ buffer: ByteBuffer) -> [String: String]? {
        buffer.withUnsafeReadableBytes { bytes -> [String: String]? in
            var index = 0
            func skipWhitespace() {
                while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                    index += 1
                }
            }
            func expect(_ byte: UInt8) -> Bool {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == byte else { return false }
                index += 1
                return true
            }
            /// A string of printable ASCII without escapes; keys also without `_` (no snake_case).
            func string(isKey: Bool) -> String? {
                guard expect(UInt8(ascii: "\"")) else { return nil }
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    let byte = bytes[index]
                    guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\"), !(isKey && byte == UInt8(ascii: "_")) else { return nil }
                    index += 1
                }
                guard index < bytes.count else { return nil }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            guard expect(UInt8(ascii: "{")) else { return nil }
            var fields: [String: String] = [:]
            if !expect(UInt8(ascii: "}")) {
                repeat {
                    guard fields.count < 16, let key = string(isKey: true), expect(UInt8(ascii: ":")), let value = string(isKey: false),
                        fields.updateValue(value, forKey: key) == nil
                    else { return nil }
                } while expect(UInt8(ascii: ","))
                guard expect(UInt8(ascii: "}")) else { return nil }
            }
            skipWhitespace()
            return index == bytes.count ? fields : nil
        }
    }

    /// Thrown for anything the fast path does not serve.
    struct Unsupported: Error {}
}

private struct FlatDecoder: Decoder {
    let fields: [String: String]
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(FlatKeyedContainer<Key>(fields: fields))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw FlatMessageDecoder.Unsupported() }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { throw FlatMessageDecoder.Unsupported() }
}

private struct FlatKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: String]
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { fields.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    func decodeNil(forKey key: Key) throws -> Bool { fields[key.stringValue] == nil }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        guard let value = fields[key.stringValue] else { throw FlatMessageDecoder.Unsupported() }
        return value
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { fields[key.stringValue] }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard T.self == String.self, let value = fields[key.stringValue] else { throw FlatMessageDecoder.Unsupported() }
        return value as! T
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = fields[key.stringValue] else { return nil }
        guard T.self == String.self else { throw FlatMessageDecoder.Unsupported() }
        return (value as! T)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw FlatMessageDecoder.Unsupported()
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw FlatMessageDecoder.Unsupported() }
    func superDecoder() throws -> any Decoder { throw FlatMessageDecoder.Unsupported() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw FlatMessageDecoder.Unsupported() }
}
