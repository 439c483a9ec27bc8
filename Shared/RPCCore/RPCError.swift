/// An RPC failure: a Connect code and a message a person can act on.
///
/// Domain code throws its own errors in domain words and maps them to this in one place;
/// anything else that escapes a handler is reported as `internal` without its text.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ConnectCode
    public var message: String

    public init(_ code: ConnectCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// A domain error that knows its Connect code and message. Services declare their errors in their
/// own words and conform here, in one place; the server answers with `rpcError`.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError {
    /// The Connect error body, `{"code": ..., "message": ...}`.
    public struct WireBody: Codable, Sendable {
        public var code: String
        public var message: String?

        public init(code: String, message: String?) {
            self.code = code
            self.message = message
        }
    }

    /// This error as the Connect JSON error body.
    public var wireBody: WireBody { WireBody(code: code.rawValue, message: message) }
}
