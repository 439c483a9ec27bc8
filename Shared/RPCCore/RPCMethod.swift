/// A message exchanged by an RPC: encoded with the proto3 JSON mapping (see `ProtoJSON`).
public typealias RPCMessage = Codable & Sendable

/// Who may call a method.
public enum RPCAccess: Sendable {
    /// Any caller; the handler decides what the end user may do.
    case `public`
    /// Only other services of this system, proven by a service credential.
    case internalOnly
}

/// One RPC, declared once in the shared model and used by both the server that registers a handler
/// for it and the clients that call it, so the two cannot drift apart.
public struct RPCMethod<Request: RPCMessage, Response: RPCMessage>: Sendable {
    /// Fully qualified service name, e.g. `grpc.health.v1.Health`.
    public let service: String
    /// Method name, e.g. `Check`.
    public let name: String
    public let access: RPCAccess

    public init(service: String, name: String, access: RPCAccess = .public,
                request: Request.Type = Request.self, response: Response.Type = Response.self) {
        self.service = service
        self.name = name
        self.access = access
    }

    /// The HTTP path Connect uses: `/<service>/<method>`.
    public var path: String { "/\(service)/\(name)" }
}
