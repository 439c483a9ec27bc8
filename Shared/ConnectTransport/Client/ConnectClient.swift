import CompressNIO
import Foundation
import Logging
import NGHTTP2
import NIOCore
import NIOPosix
import RPCCore
import Tracing

/// Where a client's calls go.
public enum Upstream: Sendable {
    /// `http://host:port` (h2c, prior knowledge) or `https://host:port` (TLS, ALPN h2).
    /// A comma-separated list of them, or a host name with several addresses, is a replicated
    /// peer: the calls are spread over every replica (`UpstreamGroup`).
    case url(String)
    /// A server's endpoint in this process, called without a socket: the same headers, protocol
    /// checks and error mapping, for tests of rules and authorization where the wire is not what
    /// is tested (as Hummingbird's `.router` test mode does).
    case inProcess(ConnectEndpoint)
}

/// Calls one upstream service with the Connect protocol (unary, JSON) over one multiplexed
/// HTTP/2 connection per replica, each opened lazily and reopened with backoff.
public final class ConnectClient: Sendable {
    /// Where and how to call.
    public struct Configuration: Sendable {
        /// `http://host:port` (h2c, prior knowledge) or `https://host:port` (TLS, ALPN h2).
        public var baseURL: String
        public var tls: TLSClientSettings
        /// Sent with every call, so internal-only methods accept them.
        public var credential: ServiceCredential?
        public var http2: HTTP2Limits
        public var connectTimeout: TimeAmount
        /// Attempts for a call the server did not start (refused, or cut off by GOAWAY).
        public var maxAttempts: Int

        public init(
            baseURL: String, tls: TLSClientSettings = TLSClientSettings(), credential: ServiceCredential? = nil,
            http2: HTTP2Limits = HTTP2Limits(maxBodyBytes: 16 << 20), connectTimeout: TimeAmount = .seconds(5),
            maxAttempts: Int = 3
        ) {
            self.baseURL = baseURL
            self.tls = tls
            self.credential = credential
            self.http2 = http2
            self.connectTimeout = connectTimeout
            self.maxAttempts = maxAttempts
        }
    }

    private let configuration: Configuration
    /// The replicas' connection pools, or nil when calls go to `inProcess`.
    private let upstreams: UpstreamGroup?
    private let inProcess: ConnectEndpoint?

    /// `configuration.baseURL` may list several URLs, comma-separated; each host name is resolved
    /// to all its addresses, again every `resolveInterval`.
    public convenience init(configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        try self.init(configuration: configuration, group: group, resolveInterval: .seconds(30), resolver: UpstreamGroup.systemResolver)
    }

    init(
        configuration: Configuration, group: any EventLoopGroup, resolveInterval: TimeAmount,
        resolver: @escaping UpstreamGroup.Resolver
    ) throws {
        self.configuration = configuration
        upstreams = try UpstreamGroup(
            urls: configuration.baseURL, configuration: configuration, group: group, resolveInterval: resolveInterval, resolver: resolver)
        inProcess = nil
    }

    /// How many replicas the calls are spread over now (known after the first call).
    public var replicaCount: Int { upstreams?.endpointCount ?? 1 }

    /// A client of `upstream`, presenting `credential` on every call (and `tls` to an https:// one).
    public convenience init(upstream: Upstream, credential: ServiceCredential? = nil, tls: TLSClientSettings = TLSClientSettings()) throws {
        switch upstream {
        case .url(let url):
            try self.init(configuration: Configuration(baseURL: url, tls: tls, credential: credential))
        case .inProcess(let endpoint):
            self.init(inProcess: endpoint, credential: credential)
        }
    }

    private init(inProcess endpoint: ConnectEndpoint, credential: ServiceCredential?) {
        configuration = Configuration(baseURL: "http://in-process", credential: credential)
        upstreams = nil
        inProcess = endpoint
    }

    /// Per-call settings.
    public struct CallOptions: Sendable {
        /// The caller stops waiting after this long; sent as `connect-timeout-ms`.
        public var timeout: Duration?
        /// The end user's access token, sent as `authorization: Bearer`.
        public var bearerToken: String?
        /// More request headers (lowercase names).
        public var headers: [(name: String, value: String)]

        public init(timeout: Duration? = nil, bearerToken: String? = nil, headers: [(name: String, value: String)] = []) {
            self.timeout = timeout
            self.bearerToken = bearerToken
            self.headers = headers
        }
    }

    /// Calls `method`. Every failure is an `RPCError`: the server's own, or one inferred from the
    /// HTTP status, or `unavailable` / `deadline_exceeded` / `canceled` from this side.
    public func call<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request,
        options: CallOptions = CallOptions()
    ) async throws(RPCError) -> Response {
        let body: ByteBuffer
        do {
            body = try ProtoJSON.encode(request)
        } catch {
            throw RPCError(.internal, "cannot encode the request: \(error)")
        }
        // The call's span is a child of the caller's (a server call, a console page, background
        // work) and travels to the server as `traceparent`.
        let span = InstrumentationSystem.tracer.startSpan(
            String(method.path.dropFirst()), context: ServiceContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        do {
            var traceHeaders: [HTTPField] = []
            TraceContext.inject(span.context, into: &traceHeaders)
            let response = try await send(path: method.path, body: body, options: options, traceHeaders: traceHeaders)
            let decoded = try Self.decode(Response.self, from: response)
            span.recordRPC(path: method.path, code: nil)
            return decoded
        } catch {
            span.recordRPC(path: method.path, code: error.code)
            throw error
        }
    }

    /// Closes the connection.
    public func close() async {
        await upstreams?.close()
    }

    // MARK: Sending

    private func send(path: String, body: ByteBuffer, options: CallOptions, traceHeaders: [HTTPField]) async throws(RPCError) -> HTTP2Message {
        let deadline = options.timeout.map { NIODeadline.now() + TimeAmount($0) }
        var headers = [
            HTTPField(name: ":method", value: "POST"),
            HTTPField(name: ":scheme", value: "http"),
            HTTPField(name: ":authority", value: "in-process"),
            HTTPField(name: ":path", value: path),
            HTTPField(name: "content-type", value: "application/json"),
            HTTPField(name: "connect-protocol-version", value: "1"),
            HTTPField(name: "accept-encoding", value: "gzip")
        ]
        if let timeout = options.timeout {
            let milliseconds = max(1, TimeAmount(timeout).nanoseconds / 1_000_000)
            headers.append(HTTPField(name: "connect-timeout-ms", value: String(milliseconds)))
        }
        if let credential = configuration.credential {
            headers.append(HTTPField(name: serviceCredentialHeader, value: credential.headerValue))
        }
        if let token = options.bearerToken {
            headers.append(HTTPField(name: "authorization", value: "Bearer \(token)"))
        }
        for header in options.headers {
            headers.append(HTTPField(name: header.name.lowercased(), value: header.value))
        }
        headers += traceHeaders

        if let inProcess {
            return await Self.call(inProcess, path: path, headers: headers, body: body)
        }
        guard let upstreams else { preconditionFailure("a client has upstreams or an in-process endpoint") }
        let pools = await upstreams.poolsForCall()
        guard !pools.isEmpty else { throw RPCError(.unavailable, "the client is closed") }
        var attempt = 0
        var index = 0
        // Endpoints this call could not reach: skipped from then on (a refusal elsewhere may bring
        // the call round again), and the call fails only when none is left.
        var unreachable = Set<Int>()
        // Whether a replica failed this call for real (a connect that failed, a refusal). Replicas
        // backing off come last; once one that was tried has failed, they are tried too despite
        // their backoff: in a rolling restart the one backing off is often back already, while the
        // one that just failed is the next to restart. Backing-off replicas are thus tried no more
        // often than the failing ones, whose own backoff paces them.
        var aReplicaFailed = false
        while true {
            attempt += 1
            if Task.isCancelled { throw RPCError(.canceled, "the call was canceled") }
            if let deadline, deadline <= .now() {
                throw RPCError(.deadlineExceeded, "the call did not finish before its deadline")
            }
            while unreachable.contains(index % pools.count) { index += 1 }
            let pool = pools[index % pools.count]
            headers[1] = HTTPField(name: ":scheme", value: pool.scheme)
            headers[2] = HTTPField(name: ":authority", value: pool.authority)
            let connection: HTTP2ClientConnection
            // (One replica: nothing else to try, so no need to ask.)
            let skippedForBackoff = pools.count > 1 && !aReplicaFailed && pool.isBackingOff
            do {
                connection = try await pool.connection(deadline: deadline, ignoringBackoff: aReplicaFailed)
            } catch {
                // Not reachable: the call was not sent, so another replica may take it.
                unreachable.insert(index % pools.count)
                if !skippedForBackoff { aReplicaFailed = true }
                if error.code == .deadlineExceeded, pools.count > 1 { pool.markUnresponsive() }
                guard error.code == .unavailable, unreachable.count < pools.count else { throw error }
                index += 1
                continue
            }
            switch try await connection.execute(headers: headers, body: body, deadline: deadline) {
            case .response(let message):
                return message
            case .failed(let error):
                // Sent, and no answer before the deadline: the replica may be stalled. Not sent
                // again (it may have run), but the next calls try the other replicas first.
                if error.code == .deadlineExceeded, pools.count > 1 { pool.markUnresponsive() }
                throw error
            case .refused:
                // The server did not start this call; it is safe to send it again on a fresh connection.
                pool.discard(connection)
                aReplicaFailed = true
                index += 1
                if attempt >= configuration.maxAttempts {
                    throw RPCError(.unavailable, "the server refused the call \(attempt) times (it may be shutting down)")
                }
            }
        }
    }

    /// One call to an endpoint in this process, as the HTTP/2 server would hand it over (from a
    /// loopback peer).
    private static func call(_ endpoint: ConnectEndpoint, path: String, headers: [HTTPField], body: ByteBuffer) async -> HTTP2Message {
        let request = HTTPRequest(
            method: "POST", target: path, headers: headers.filter { !$0.name.hasPrefix(":") }.map { ($0.name, $0.value) },
            body: body, peerAddress: "127.0.0.1")
        let response = await endpoint.handle(request)
        return HTTP2Message(
            fields: [HTTPField(name: ":status", value: String(response.status))] + response.headers.map { HTTPField(name: $0.name, value: $0.value) },
            body: response.body)
    }

    static func decode<Response: Decodable>(_ type: Response.Type, from message: HTTP2Message) throws(RPCError) -> Response {
        var body = message.body
        if message["content-encoding"]?.lowercased() == "gzip", body.readableBytes > 0 {
            do {
                body = try body.decompress(with: .gzip(), maxSize: 64 << 20)
            } catch {
                throw RPCError(.internal, "the server sent a corrupt gzip body")
            }
        }
        let status = Int(message[":status"] ?? "") ?? 0
        guard status == 200 else {
            if message["content-type"]?.hasPrefix("application/json") == true,
                let wire = try? ProtoJSON.decode(RPCError.WireBody.self, from: body),
                let code = ConnectCode(rawValue: wire.code)
            {
                throw RPCError(code, wire.message ?? "")
            }
            throw RPCError(ConnectCode.inferred(fromHTTPStatus: status), "HTTP status \(status) without a Connect error body")
        }
        do {
            return try ProtoJSON.decode(Response.self, from: body)
        } catch {
            throw RPCError(.internal, "the server's response does not decode: \(error.message)")
        }
    }
}

/// Host, port and scheme of an upstream, parsed from its base URL, and the address it resolved to.
struct UpstreamAddress: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var secure: Bool
    /// The IP address to connect to (one of the host's); nil connects to the host by name. TLS
    /// still checks the certificate against `host`.
    var address: String?

    var description: String {
        address.map { $0 == host ? "\(host):\(port)" : "\(host):\(port) (\($0))" } ?? "\(host):\(port)"
    }

    init(parsing url: String) throws {
        let secure: Bool
        let rest: Substring
        if url.hasPrefix("https://") {
            secure = true
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            secure = false
            rest = url.dropFirst(7)
        } else {
            throw ConfigurationError("upstream URL '\(url)' must start with http:// or https://")
        }
        let hostPort = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            self.init(host: String(hostPort), port: secure ? 443 : 80, secure: secure)
            guard !host.isEmpty else { throw ConfigurationError("upstream URL '\(url)' has no host") }
            return
        }
        self.init(host: String(hostPort[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port, secure: secure)
    }

    init(host: String, port: Int, secure: Bool) {
        self.host = host
        self.port = port
        self.secure = secure
    }
}
