import CompressNIO
import Logging
import NIOCore
import RPCCore

/// The Connect protocol (unary, JSON) for one server: turns an HTTP request into a call on the
/// router, and the call's outcome into an HTTP response. Knows nothing of sockets or HTTP versions.
public struct ConnectEndpoint: Sendable {
    /// Limits and switches of the protocol layer.
    public struct Configuration: Sendable {
        /// Largest request body, both on the wire and after decompression.
        public var maxBodyBytes: Int
        /// Responses at least this large are gzipped when the caller accepts gzip.
        public var compressionThreshold: Int

        public init(maxBodyBytes: Int = 1 << 20, compressionThreshold: Int = 1024) {
            self.maxBodyBytes = maxBodyBytes
            self.compressionThreshold = compressionThreshold
        }
    }

    private let router: RPCRouter
    private let plainRoutes: [String: PlainRoute]
    private let trustedServices: TrustedServices
    private let configuration: Configuration
    private let metrics: ServerMetrics
    private let logger: Logger

    public init(router: RPCRouter, plainRoutes: [String: PlainRoute], trustedServices: TrustedServices,
                configuration: Configuration, metrics: ServerMetrics, logger: Logger) {
        self.router = router
        self.plainRoutes = plainRoutes
        self.trustedServices = trustedServices
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// The largest request body the transports should buffer.
    public var maxBodyBytes: Int { configuration.maxBodyBytes }

    /// Answers one request. Never throws: every failure becomes a Connect error response.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let path = String(request.path)
        if request.method == "GET", let route = plainRoutes[path] {
            return await route()
        }
        let started = ContinuousClock.now
        guard let method = router.method(at: path) else {
            let error = RPCError(.unimplemented, "no method \(path) on this server: check the service and method names")
            return finish(error, method: "unknown", requestID: nil, started: started, acceptsGzip: false)
        }
        let requestID = Self.requestID(from: request)
        let acceptsGzip = request.header("accept-encoding").map(Self.listsGzip) ?? false
        if request.method == "POST", !Self.isJSON(request.header("content-type")) {
            let error = RPCError(.unknown, "unsupported content type '\(request.header("content-type") ?? "")': send application/json")
            var response = finish(error, method: path, requestID: requestID, started: started, acceptsGzip: false)
            response.status = 415
            response.headers.append(("accept-post", "application/json"))
            return response
        }
        do {
            let context = try prepare(request, requestID: requestID, access: method.access)
            let body = try decodedBody(request)
            let responseBody: ByteBuffer
            if let deadline = context.deadline {
                responseBody = try await Self.withDeadline(deadline) { try await method(body, context: context) }
            } else {
                responseBody = try await method(body, context: context)
            }
            metrics.record(method: path, code: "ok", duration: ContinuousClock.now - started)
            return encode(status: 200, body: responseBody, requestID: requestID, acceptsGzip: acceptsGzip)
        } catch let error as RPCError {
            return finish(error, method: path, requestID: requestID, started: started, acceptsGzip: acceptsGzip)
        } catch is CancellationError {
            return finish(RPCError(.canceled, "the call was canceled"), method: path, requestID: requestID,
                          started: started, acceptsGzip: acceptsGzip)
        } catch {
            logger.error("handler failed", metadata: ["method": "\(path)", "request_id": "\(requestID)", "error": "\(error)"])
            return finish(RPCError(.internal, "internal error (request id \(requestID))"), method: path,
                          requestID: requestID, started: started, acceptsGzip: acceptsGzip)
        }
    }

    /// The response for a request whose body the transport stopped reading at the limit.
    public func bodyTooLargeResponse() -> HTTPResponse {
        errorResponse(RPCError(.resourceExhausted, "the request body exceeds \(configuration.maxBodyBytes) bytes"))
    }

    // MARK: Protocol checks

    private func prepare(_ request: HTTPRequest, requestID: String, access: RPCAccess) throws(RPCError) -> CallContext {
        guard request.method == "POST" else {
            throw RPCError(.unimplemented, "\(request.method) is not supported for RPC methods: use POST")
        }
        if let version = request.header("connect-protocol-version"), version != "1" {
            throw RPCError(.invalidArgument, "connect-protocol-version must be 1, got '\(version)'")
        }
        var deadline: ContinuousClock.Instant?
        if let timeout = request.header("connect-timeout-ms") {
            guard timeout.count <= 10, let milliseconds = Int64(timeout), milliseconds > 0 else {
                throw RPCError(.invalidArgument, "connect-timeout-ms must be a positive integer of at most 10 digits, got '\(timeout)'")
            }
            deadline = .now + .milliseconds(milliseconds)
        }
        let callingService = request.tlsClientIdentity
            ?? request.header(serviceCredentialHeader).flatMap(trustedServices.verify)
        if access == .internalOnly, callingService == nil {
            throw RPCError(.unauthenticated, "this method is internal-only: call it with a valid service credential")
        }
        var bearer: String?
        if let authorization = request.header("authorization"), authorization.lowercased().hasPrefix("bearer ") {
            bearer = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return CallContext(path: String(request.path), requestID: requestID, deadline: deadline,
                           headers: request.headers, callingService: callingService,
                           bearerToken: bearer, peerAddress: request.peerAddress)
    }

    private func decodedBody(_ request: HTTPRequest) throws(RPCError) -> ByteBuffer {
        guard request.body.readableBytes <= configuration.maxBodyBytes else {
            throw RPCError(.resourceExhausted, "the request body exceeds \(configuration.maxBodyBytes) bytes")
        }
        let encoding = (request.header("content-encoding") ?? "identity").lowercased()
        switch encoding {
        case "identity", "":
            return request.body
        case "gzip":
            // Never decompress an empty body (Connect protocol).
            guard request.body.readableBytes > 0 else { return request.body }
            var compressed = request.body
            do {
                return try compressed.decompress(with: .gzip(), maxSize: configuration.maxBodyBytes + 1)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw RPCError(.resourceExhausted, "the request body exceeds \(configuration.maxBodyBytes) bytes once decompressed")
            } catch {
                throw RPCError(.invalidArgument, "the gzip request body is corrupt")
            }
        default:
            throw RPCError(.unimplemented, "content-encoding '\(encoding)' is not supported: use gzip or identity")
        }
    }

    // MARK: Responses

    private func finish(_ error: RPCError, method: String, requestID: String?, started: ContinuousClock.Instant,
                        acceptsGzip: Bool) -> HTTPResponse {
        metrics.record(method: method, code: error.code.rawValue, duration: ContinuousClock.now - started)
        if error.code == .internal || error.code == .unknown {
            logger.warning("call failed", metadata: ["method": "\(method)", "code": "\(error.code.rawValue)"])
        } else {
            logger.debug("call refused", metadata: ["method": "\(method)", "code": "\(error.code.rawValue)", "message": "\(error.message)"])
        }
        var response = errorResponse(error)
        if let requestID { response.headers.append(("x-request-id", requestID)) }
        return response
    }

    private func errorResponse(_ error: RPCError) -> HTTPResponse {
        let body = (try? ProtoJSON.encode(error.wireBody)) ?? ByteBuffer(string: #"{"code":"internal"}"#)
        return HTTPResponse(status: error.code.httpStatus, headers: [("content-type", "application/json")], body: body)
    }

    private func encode(status: Int, body: ByteBuffer, requestID: String, acceptsGzip: Bool) -> HTTPResponse {
        var headers: [(name: String, value: String)] = [("content-type", "application/json"), ("x-request-id", requestID)]
        if acceptsGzip, body.readableBytes >= configuration.compressionThreshold {
            var plain = body
            if let compressed = try? plain.compress(with: .gzip()) {
                headers.append(("content-encoding", "gzip"))
                return HTTPResponse(status: status, headers: headers, body: compressed)
            }
        }
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    // MARK: Helpers

    private static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return mediaType == "application/json"
    }

    private static func listsGzip(_ acceptEncoding: String) -> Bool {
        acceptEncoding.split(separator: ",").contains { item in
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            return parts.first == "gzip" && !parts.dropFirst().contains("q=0")
        }
    }

    private static func requestID(from request: HTTPRequest) -> String {
        if let given = request.header("x-request-id"), (1...64).contains(given.utf8.count),
           given.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }) {
            return given
        }
        return String(UInt64.random(in: .min ... .max), radix: 16)
    }

    /// Runs `body`, or throws `deadline_exceeded` once `deadline` passes (cancelling the body).
    static func withDeadline<T: Sendable>(_ deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                throw RPCError(.deadlineExceeded, "the call did not finish within its connect-timeout-ms deadline")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}
