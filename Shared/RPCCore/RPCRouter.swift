import NIOCore

/// The methods a server answers, by path. Built once at start-up, then only read.
public struct RPCRouter: Sendable {
    private var methods: [String: RegisteredMethod] = [:]

    public init() {}

    /// Registers the handler for a declared method. Registering a path twice is a programming error.
    public mutating func register<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        handler: @escaping @Sendable (Request, CallContext) async throws -> Response
    ) {
        precondition(methods[method.path] == nil, "\(method.path) registered twice")
        methods[method.path] = RegisteredMethod(path: method.path, access: method.access) { body, context in
            let request = try ProtoJSON.decode(Request.self, from: body)
            let response = try await handler(request, context)
            return try ProtoJSON.encode(response)
        }
    }

    /// Registers a handler that answers with a response encoded ahead of time, for answers
    /// served many times from a cache (the billing page's status): no encoding per call.
    public mutating func register<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        encodedHandler: @escaping @Sendable (Request, CallContext) async throws -> EncodedMessage<Response>
    ) {
        precondition(methods[method.path] == nil, "\(method.path) registered twice")
        methods[method.path] = RegisteredMethod(path: method.path, access: method.access) { body, context in
            let request = try ProtoJSON.decode(Request.self, from: body)
            return try await encodedHandler(request, context).json
        }
    }

    /// The method registered at `path`, if any.
    public func method(at path: String) -> RegisteredMethod? {
        methods[path]
    }
}

/// A registered handler with its message types erased: JSON body in, JSON body out.
public struct RegisteredMethod: Sendable {
    public let path: String
    public let access: RPCAccess
    private let invoke: @Sendable (ByteBuffer, CallContext) async throws -> ByteBuffer

    init(path: String, access: RPCAccess, invoke: @escaping @Sendable (ByteBuffer, CallContext) async throws -> ByteBuffer) {
        self.path = path
        self.access = access
        self.invoke = invoke
    }

    /// Decodes the body, runs the handler and encodes its answer. A body that does not decode
    /// throws `RPCError(.invalidArgument)` naming the field.
    public func callAsFunction(_ body: ByteBuffer, context: CallContext) async throws -> ByteBuffer {
        try await invoke(body, context)
    }
}

/// A message already encoded as proto3 JSON, typed by the message so it can only answer a method
/// whose response it is.
public struct EncodedMessage<Message: Encodable>: Sendable {
    public let json: ByteBuffer

    public init(_ message: Message) throws {
        json = try ProtoJSON.encode(message)
    }
}
