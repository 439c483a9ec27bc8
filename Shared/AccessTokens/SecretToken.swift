import Crypto
import Foundation

/// A 256-bit random secret handed to a user (session token, email link, registration claim). Only
/// its SHA-256 hash is stored, so a copy of the database cannot be used in its place.
public struct SecretToken: Sendable {
    /// What the user gets: 43 characters of base64url.
    public let value: String

    public static func generate() -> SecretToken {
        SecretToken(value: Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }))
    }

    /// The stored form, hex SHA-256 of the token's text.
    public var hash: String { Self.hash(value) }

    public static func hash(_ value: String) -> String {
        // Hex by table: this runs on every request that carries a session (String(format:) per
        // byte cost more than the hash itself).
        let digits = Array("0123456789abcdef".utf8)
        let digest = SHA256.hash(data: Data(value.utf8))
        return String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { buffer in
            var index = 0
            for byte in digest {
                buffer[index] = digits[Int(byte >> 4)]
                buffer[index + 1] = digits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }

    /// True for text shaped like a token; anything else is refused before touching the database.
    public static func isWellFormed(_ value: String) -> Bool {
        value.utf8.count == 43 && Base64URL.decode(value)?.count == 32
    }
}
