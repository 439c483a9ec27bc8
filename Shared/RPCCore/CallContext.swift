/// What a handler knows about the call besides its request message.
public struct CallContext: Sendable {
    /// The method's path, e.g. `/grpc.health.v1.Health/Check`.
    public let path: String
    /// Identifies the call in logs on both sides; taken from `x-request-id` or generated.
    public let requestID: String
    /// When the caller stops waiting (`connect-timeout-ms`); nil when it gave none.
    public let deadline: ContinuousClock.Instant?
    /// Request headers, names lowercased, without `authorization` and the service credential.
    public let headers: [(name: String, value: String)]
    /// The calling service, proven by its credential header or TLS client certificate; nil for others.
    public let callingService: String?
    /// The bearer token from `authorization`, not yet verified: services verify it themselves.
    public let bearerToken: String?
    /// The address of the peer that opened the connection.
    public let peerAddress: String?

    public init(
        path: String, requestID: String, deadline: ContinuousClock.Instant?,
        headers: [(name: String, value: String)], callingService: String?,
        bearerToken: String?, peerAddress: String?
    ) {
        self.path = path
        self.requestID = requestID
        self.deadline = deadline
        self.headers = headers
        self.callingService = callingService
        self.bearerToken = bearerToken
        self.peerAddress = peerAddress
    }

    /// The first value of a request header, by lowercase name.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}

extension CallContext {
    /// The header a trusted front end (a service with a credential) uses to pass on the end user's IP.
    public static let endUserIPHeader = "x-end-user-ip"

    /// The end user's IP: as passed on by a trusted service, else the connection's peer. The
    /// header from anyone else is ignored, or a client could pick its own throttling bucket.
    public var endUserIP: String? {
        if callingService != nil, let forwarded = header(Self.endUserIPHeader), !forwarded.isEmpty, forwarded.utf8.count <= 64 {
            return forwarded
        }
        return peerAddress
    }
}
