import Crypto
import Foundation
import RPCCore

/// The header that carries a calling service's credential: `<service-name>:<secret>`.
public let serviceCredentialHeader = "x-service-credential"

/// What a service presents when it calls another: its name and its secret.
public struct ServiceCredential: Sendable {
    public let serviceName: String
    public let secret: String

    public init(serviceName: String, secret: String) {
        self.serviceName = serviceName
        self.secret = secret
    }

    /// The header value sent with every call.
    var headerValue: String { "\(serviceName):\(secret)" }
}

/// The services a server trusts, each known only by the SHA-256 digest of its secret.
public struct TrustedServices: Sendable {
    private let digests: [String: [UInt8]]

    /// `entries` maps a service name to the lowercase hex SHA-256 of its secret.
    public init(digestsByService entries: [String: String]) throws {
        var digests: [String: [UInt8]] = [:]
        for (name, hex) in entries {
            guard let bytes = Self.bytes(fromHex: hex), bytes.count == SHA256.byteCount else {
                throw ConfigurationError("trusted service '\(name)': expected the 64 hex digits of SHA-256(secret)")
            }
            digests[name] = bytes
        }
        self.digests = digests
    }

    /// No trusted services: every internal-only method refuses every caller.
    public static let none = try! TrustedServices(digestsByService: [:])

    /// Parses `name=hexdigest,name=hexdigest` (the `--trusted-services` flag).
    public init(parsing text: String) throws {
        var entries: [String: String] = [:]
        for item in text.split(separator: ",") where !item.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ConfigurationError("trusted services: expected name=sha256hex, got '\(item)'")
            }
            entries[parts[0]] = parts[1].lowercased()
        }
        try self.init(digestsByService: entries)
    }

    /// The hex SHA-256 of a secret: what an operator puts in another service's trusted list.
    public static func digest(ofSecret secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The name of the service whose credential this is, or nil. The secret's digest is compared
    /// in constant time, and an unknown name costs the same as a known one.
    public func verify(_ headerValue: String) -> String? {
        guard let colon = headerValue.firstIndex(of: ":") else { return nil }
        let name = String(headerValue[..<colon])
        let presented = Array(SHA256.hash(data: Data(headerValue[headerValue.index(after: colon)...].utf8)))
        let expected = digests[name] ?? Array(repeating: 0, count: SHA256.byteCount)
        let equal = constantTimeEquals(presented, expected)
        return equal && digests[name] != nil ? name : nil
    }

    private static func bytes(fromHex hex: String) -> [UInt8]? {
        let characters = Array(hex.utf8)
        guard characters.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            guard let high = hexValue(characters[index]), let low = hexValue(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
