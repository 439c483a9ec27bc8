import CompressNIO
import Logging
import NIOCore
import RPCCore
import Synchronization
import Tracing

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
    /// Refusals a client can cause at will are logged at most once a minute each.
    private let refusals: RateLimitedLog
    /// The process's tracer, looked up once: the lookup casts on every call, and the process
    /// bootstraps tracing before it makes its endpoint.
    private let tracer = InstrumentationSystem.tracer

    public init(
        router: RPCRouter, plainRoutes: [String: PlainRoute], trustedServices: TrustedServices,
        configuration: Configuration, metrics: ServerMetrics, logger: Logger
    ) {
        self.router = router
        self.plainRoutes = plainRoutes
        self.trustedServices = trustedServices
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        refusals = RateLimitedLog(logger: logger)
    }

    /// The largest request body the transports should buffer.
    public var maxBodyBytes: Int { configuration.maxBodyBytes }

    /// Answers one request. Never throws: every failure becomes a Connect error response.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let path = String(request.path)
        if let route = plainRoutes[path], route.method == request.method {
            return await route.handle(request)
        }
        let started = ContinuousClock.now
        guard let method = router.method(at: path) else {
            let error = RPCError(.unimplemented, "no method \(path) on this server: check the service and method names")
            return finish(error, method: "unknown", requestID: nil, started: started, acceptsGzip: false).response
        }
        // The call's span continues the caller's trace (its `traceparent`), or starts one; the
        // handler runs inside it, so its log lines and the calls it makes carry the trace.
        let span = tracer.startSpan(
            String(path.dropFirst()), context: TraceContext.extracted(from: request.headers, into: TraceContext.untracedCall, by: tracer),
            ofKind: .server)
        defer { span.end() }
        let (response, code) = await TraceContext.run(in: span) { await call(method, request, path: path, started: started) }
        span.recordRPC(path: path, code: code)
        if span.isRecording { span.attributes["http.response.status_code"] = response.status }
        return response
    }

    /// The call itself, with the Connect code it ended with (nil for success).
    private func call(_ method: RegisteredMethod, _ request: HTTPRequest, path: String, started: ContinuousClock.Instant) async -> (
        response: HTTPResponse, code: ConnectCode?
    ) {
        let headers = ProtocolHeaders(request.headers)
        let requestID = headers.requestID.flatMap(Self.acceptableRequestID) ?? RequestIDs.next()
        let acceptsGzip = headers.acceptEncoding.map(Self.listsGzip) ?? false
        if request.method == "POST", !Self.isJSON(headers.contentType) {
            let error = RPCError(.unknown, "unsupported content type '\(headers.contentType ?? "")': send application/json")
            metrics.record(method: path, code: error.code.rawValue, duration: ContinuousClock.now - started)
            refusals.warning("refusing calls with a content type other than application/json", metadata: ["method": "\(path)"])
            var response = errorResponse(error)
            response.headers.append(("x-request-id", requestID))
            response.status = 415
            response.headers.append(("accept-post", "application/json"))
            return (response, error.code)
        }
        do {
            let context = try prepare(request, path: path, headers: headers, requestID: requestID, access: method.access)
            let body = try decodedBody(request.body, encoding: headers.contentEncoding)
            let responseBody: ByteBuffer
            if let deadline = context.deadline {
                responseBody = try await Self.withDeadline(deadline) { try await method(body, context: context) }
            } else {
                responseBody = try await method(body, context: context)
            }
            metrics.record(method: path, code: "ok", duration: ContinuousClock.now - started)
            return (encode(status: 200, body: responseBody, requestID: requestID, acceptsGzip: acceptsGzip), nil)
        } catch let error as RPCError {
            return finish(error, method: path, requestID: requestID, started: started, acceptsGzip: acceptsGzip)
        } catch let error as any RPCErrorConvertible {
            return finish(error.rpcError, method: path, requestID: requestID, started: started, acceptsGzip: acceptsGzip)
        } catch is CancellationError {
            return finish(
                RPCError(.canceled, "the call was canceled"), method: path, requestID: requestID,
                started: started, acceptsGzip: acceptsGzip)
        } catch {
            logger.error("handler failed", metadata: ["method": "\(path)", "request_id": "\(requestID)", "error": "\(error)"])
            return finish(
                RPCError(.internal, "internal error (request id \(requestID))"), method: path,
                requestID: requestID, started: started, acceptsGzip: acceptsGzip)
        }
    }

    /// The response for a request whose body the transport stopped reading at the limit.
    public func bodyTooLargeResponse() -> HTTPResponse {
        errorResponse(RPCError(.resourceExhausted, "the request body exceeds \(configuration.maxBodyBytes) bytes"))
    }

    // MARK: Protocol checks

    private func prepare(
        _ request: HTTPRequest, path: String, headers: ProtocolHeaders, requestID: String,
        access: RPCAccess
    ) throws(RPCError) -> CallContext {
        guard request.method == "POST" else {
            throw RPCError(.unimplemented, "\(request.method) is not supported for RPC methods: use POST")
        }
        if let version = headers.protocolVersion, version != "1" {
            throw RPCError(.invalidArgument, "connect-protocol-version must be 1, got '\(version)'")
        }
        var deadline: ContinuousClock.Instant?
        if let timeout = headers.timeout {
            guard timeout.count <= 10, let milliseconds = Int64(timeout), milliseconds > 0 else {
                throw RPCError(.invalidArgument, "connect-timeout-ms must be a positive integer of at most 10 digits, got '\(timeout)'")
            }
            deadline = .now + .milliseconds(milliseconds)
        }
        let callingService =
            request.tlsClientIdentity
            ?? headers.serviceCredential.flatMap(trustedServices.verify)
        if let refusal = access.refusal(of: callingService) { throw refusal }
        var bearer: String?
        if let authorization = headers.authorization, authorization.utf8.count > 7,
            authorization.prefix(7).lowercased() == "bearer "
        {
            bearer = String(authorization.dropFirst(7).drop { $0 == " " })
        }
        // Secrets stay out of the headers handlers see (and might log): the verified caller and the
        // bearer token have fields of their own.
        let visibleHeaders =
            headers.serviceCredential == nil && headers.authorization == nil
            ? request.headers
            : request.headers.filter { $0.name != serviceCredentialHeader && $0.name != "authorization" }
        return CallContext(
            path: path, requestID: requestID, deadline: deadline,
            headers: visibleHeaders, callingService: callingService,
            bearerToken: bearer, peerAddress: request.peerAddress)
    }

    private func decodedBody(_ body: ByteBuffer, encoding: String?) throws(RPCError) -> ByteBuffer {
        guard body.readableBytes <= configuration.maxBodyBytes else {
            throw RPCError(.resourceExhausted, "the request body exceeds \(configuration.maxBodyBytes) bytes")
        }
        let encoding = (encoding ?? "identity").lowercased()
        switch encoding {
        case "identity", "":
            return body
        case "gzip":
            // Never decompress an empty body (Connect protocol).
            guard body.readableBytes > 0 else { return body }
            var compressed = body
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

    private func finish(
        _ error: RPCError, method: String, requestID: String?, started: ContinuousClock.Instant,
        acceptsGzip: Bool
    ) -> (response: HTTPResponse, code: ConnectCode?) {
        metrics.record(method: method, code: error.code.rawValue, duration: ContinuousClock.now - started)
        if error.code == .internal || error.code == .unknown {
            logger.warning("call failed", metadata: ["method": "\(method)", "code": "\(error.code.rawValue)"])
        } else {
            logger.debug("call refused", metadata: ["method": "\(method)", "code": "\(error.code.rawValue)", "message": "\(error.message)"])
        }
        var response = errorResponse(error)
        if let requestID { response.headers.append(("x-request-id", requestID)) }
        return (response, error.code)
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

    /// `application/json`, optionally with parameters (`; charset=utf-8`), in any letter case.
    /// Plain byte comparisons: this runs on every call.
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let bytes = Array(contentType.utf8)
        let expected = Array("application/json".utf8)
        guard bytes.count >= expected.count else { return false }
        for index in expected.indices where bytes[index] | 0x20 != expected[index] | 0x20 { return false }
        let rest = bytes[expected.count...]
        return rest.first.map { $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: " ") } ?? true
    }

    /// Whether an `accept-encoding` value lists gzip without `q=0`.
    static func listsGzip(_ acceptEncoding: String) -> Bool {
        for item in acceptEncoding.lowercased().split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let name = parts.first, name.filter({ $0 != " " }) == "gzip" else { continue }
            return !parts.dropFirst().contains { $0.filter { $0 != " " } == "q=0" }
        }
        return false
    }

    /// A caller's `x-request-id`, if it is short and plain enough to put in logs.
    private static func acceptableRequestID(_ given: String) -> String? {
        guard (1...64).contains(given.utf8.count) else { return nil }
        let plain = given.utf8.allSatisfy {
            $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0)
        }
        return plain ? given : nil
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

/// The request headers the Connect layer reads, picked out in one pass over the header list.
struct ProtocolHeaders {
    var contentType: String?
    var contentEncoding: String?
    var acceptEncoding: String?
    var protocolVersion: String?
    var timeout: String?
    var serviceCredential: String?
    var authorization: String?
    var requestID: String?

    init(_ headers: [(name: String, value: String)]) {
        for (name, value) in headers {
            switch name {
            case "content-type": contentType = value
            case "content-encoding": contentEncoding = value
            case "accept-encoding": acceptEncoding = value
            case "connect-protocol-version": protocolVersion = value
            case "connect-timeout-ms": timeout = value
            case serviceCredentialHeader: serviceCredential = value
            case "authorization": authorization = value
            case "x-request-id": requestID = value
            default: break
            }
        }
    }
}

/// Request ids: a random per-process prefix and a counter, unique without a system call per call.
enum RequestIDs {
    private static let prefix = String(UInt32.random(in: .min ... .max), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let value = counter.add(1, ordering: .relaxed).newValue
        return prefix + "-" + String(value, radix: 16)
    }
}
