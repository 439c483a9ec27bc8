/// A message exchanged by an RPC: encoded with the proto3 JSON mapping (see `ProtoJSON`).
public typealias RPCMessage = Codable & Sendable

/// Who may call a method.
public enum RPCAccess: Sendable, Hashable {
    /// Any caller; the handler decides what the end user may do.
    case `public`
    /// Only the named services of this system, proven by a service credential (or client
    /// certificate) whose name is in `callers`. Another trusted service is refused too: being
    /// trusted for one method is not a licence for all of them.
    case internalOnly(callers: Set<String>)

    /// Why `callingService` may not call a method with this access, or nil when it may.
    public func refusal(of callingService: String?) -> RPCError? {
        guard case .internalOnly(let callers) = self else { return nil }
        guard let callingService else {
            return RPCError(.unauthenticated, "this method is internal-only: call it with a valid service credential")
        }
        guard callers.contains(callingService) else {
            return RPCError(
                .permissionDenied,
                "service '\(callingService)' may not call this method; it is for \(callers.sorted().joined(separator: ", ")) only")
        }
        return nil
    }
}

/// One RPC, declared once in the shared model and used by both the server that registers a handler
/// for it and the clients that call it, so the two cannot drift apart.
public struct RPCMethod<Request: RPCMessage, Response: RPCMessage>: Sendable {
    /// Fully qualified service name, e.g. `grpc.health.v1.Health`.
    public let service: String
    /// Method name, e.g. `Check`.
    public let name: String
    public let access: RPCAccess

    public init(
        service: String, name: String, access: RPCAccess = .public,
        request: Request.Type = Request.self, response: Response.Type = Response.self
    ) {
        self.service = service
        self.name = name
        self.access = access
    }

    /// The HTTP path Connect uses: `/<service>/<method>`.
    public var path: String { "/\(service)/\(name)" }
}
