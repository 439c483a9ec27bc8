import Crypto
import Foundation

/// AWS Signature Version 4 for one service and region (docs.aws.amazon.com, "Signature Version 4
/// signing process"). A value type with no I/O, so it is tested against botocore's signer directly.
public struct SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    /// The signing name, `aws-marketplace` for the Marketplace seller APIs.
    public let service: String
    public let region: String

    public init(credentials: AWSCredentials, service: String, region: String) {
        self.credentials = credentials
        self.service = service
        self.region = region
    }

    /// A request as it will be sent.
    public struct Request: Sendable {
        public var method: String
        /// Scheme, host (and port), path: `https://metering.marketplace.us-east-1.amazonaws.com/`.
        public var url: URL
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public init(method: String, url: URL, headers: [(name: String, value: String)], body: [UInt8]) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
        }
    }

    /// The pieces of one signature, kept for tests and debugging (none of them is secret).
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
        /// The headers to add to the request: `x-amz-date`, `authorization`, and the security token.
        public var headers: [(name: String, value: String)]
    }

    /// Headers AWS leaves out of signatures (botocore's list).
    static let unsignedHeaders: Set<String> = [
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"
    ]

    /// Signs `request` as of `date`.
    public func sign(_ request: Request, at date: Date) -> Signature {
        let timestamp = Self.timestamp(date)
        let day = String(timestamp.prefix(8))
        var added: [(name: String, value: String)] = [("x-amz-date", timestamp)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }

        // The headers this signature sets replace any the caller gave (a retry re-signs).
        let given = request.headers.filter { !["x-amz-date", "x-amz-security-token", "authorization"].contains($0.name.lowercased()) }
        var signed: [String: [String]] = [:]
        for (name, value) in given + added {
            let lowered = name.lowercased()
            guard !Self.unsignedHeaders.contains(lowered) else { continue }
            signed[lowered, default: []].append(value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).joined(separator: " "))
        }
        if signed["host"] == nil { signed["host"] = [Self.host(of: request.url)] }
        let names = signed.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(signed[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let path = Self.canonicalPath(request.url)
        let query = Self.canonicalQuery(request.url.query)
        let payloadHash = Self.hex(SHA256.hash(data: request.body))
        let canonicalRequest = [request.method, path, query, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
            headers: added + [("authorization", authorization)])
    }

    /// `20260131T120000Z`.
    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
    }

    /// The host header value: the port only when it is not the scheme's default.
    static func host(of url: URL) -> String {
        let host = url.host ?? ""
        guard let port = url.port else { return host }
        let isDefault = (url.scheme == "https" && port == 443) || (url.scheme == "http" && port == 80)
        return isDefault ? host : "\(host):\(port)"
    }

    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8)

    static func percentEncode(_ text: String, keepSlash: Bool) -> String {
        var result = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                result.append(Character(UnicodeScalar(byte)))
            } else {
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    /// The path as sent (already percent-encoded), encoded once more: SigV4 encodes path segments
    /// twice for every service but S3.
    private static func canonicalPath(_ url: URL) -> String {
        let sent = url.path(percentEncoded: true)
        return sent.isEmpty ? "/" : percentEncode(sent, keepSlash: true)
    }

    private static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (percentEncode(name, keepSlash: false), percentEncode(value, keepSlash: false))
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
