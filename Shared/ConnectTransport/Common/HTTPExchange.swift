import NIOCore

/// A whole HTTP request as the Connect layer sees it, whatever HTTP version carried it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// Path and query, e.g. `/grpc.health.v1.Health/Check`.
    public var target: String
    /// Header fields, names lowercased, pseudo-headers removed.
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer
    public var peerAddress: String?
    /// The verified TLS client certificate's common name, when the connection has one.
    public var tlsClientIdentity: String?

    public init(
        method: String, target: String, headers: [(name: String, value: String)], body: ByteBuffer,
        peerAddress: String? = nil, tlsClientIdentity: String? = nil
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.peerAddress = peerAddress
        self.tlsClientIdentity = tlsClientIdentity
    }

    /// The first value of a header by lowercase name.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// The target without its query string.
    public var path: Substring {
        guard let query = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target[...] }
        return target[..<query]
    }
}

/// A whole HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields, names lowercased.
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer

    public init(status: Int, headers: [(name: String, value: String)] = [], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response, for the probe and metrics endpoints.
    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("content-type", contentType)], body: ByteBuffer(string: text))
    }
}

/// A plain HTTP route beside the RPC methods: the probes and metrics (`GET /healthz`, `/readyz`,
/// `/metrics`) and webhooks such as Amazon SNS's (`POST /marketplace/sns`). It answers only its
/// own method; anything else at its path goes to the RPC router, which refuses it.
public struct PlainRoute: Sendable {
    public let method: String
    public let handle: @Sendable (HTTPRequest) async -> HTTPResponse

    public init(method: String, handle: @escaping @Sendable (HTTPRequest) async -> HTTPResponse) {
        self.method = method
        self.handle = handle
    }

    /// A `GET` route that needs nothing from the request.
    public static func get(_ answer: @escaping @Sendable () async -> HTTPResponse) -> PlainRoute {
        PlainRoute(method: "GET") { _ in await answer() }
    }
}
