import ConnectTransport
import Foundation
import Logging
import NGHTTP2
import NIOCore
import NIOPosix
import Prometheus
import RPCCore
import ServiceRuntime

/// An in-process Connect server on 127.0.0.1 and a free port, serving Echo and Health.
public final class TestServer: Sendable {
    public let server: ConnectServer
    public let port: Int
    public let metrics: ServerMetrics
    public var baseURL: String { "\(tls == nil ? "http" : "https")://\(host):\(port)" }
    /// The loopback address it listens on.
    public let host: String
    private let tls: TLSFiles?

    public static let secret = "test-secret-of-the-caller-service"

    /// Starts a server; `port` 0 picks a free one.
    public static func start(
        host: String = "127.0.0.1", port: Int = 0, maxBodyBytes: Int = 1 << 20, maxConcurrentStreams: UInt32 = 250,
        tls: TLSFiles? = nil, idleTimeout: TimeAmount = .seconds(60),
        maxConnections: Int = 10_000
    ) async throws -> TestServer {
        var router = RPCRouter()
        Echo.register(in: &router)
        HealthService(services: ["test.v1.Echo"]).register(in: &router)
        let metrics = ServerMetrics(registry: PrometheusCollectorRegistry())
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        let endpoint = ConnectEndpoint(
            router: router,
            plainRoutes: ["/healthz": .get { .text(200, "ok\n") }],
            trustedServices: try TrustedServices(digestsByService: ["caller": TrustedServices.digest(ofSecret: secret)]),
            configuration: .init(maxBodyBytes: maxBodyBytes), metrics: metrics, logger: logger)
        let server = ConnectServer(
            configuration: .init(
                host: host, port: port, tls: tls,
                http2: HTTP2Limits(maxConcurrentStreams: maxConcurrentStreams), idleTimeout: idleTimeout,
                maxConnections: maxConnections),
            endpoint: endpoint, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let address = try await server.start()
        return TestServer(server: server, host: host, port: address.port!, metrics: metrics, tls: tls)
    }

    private init(server: ConnectServer, host: String, port: Int, metrics: ServerMetrics, tls: TLSFiles?) {
        self.host = host
        self.server = server
        self.port = port
        self.metrics = metrics
        self.tls = tls
    }

    public func stop() async {
        await server.shutdown(timeout: .seconds(2))
    }

    /// A client for this server; `credential` makes internal-only methods callable.
    public func client(credential: ServiceCredential? = nil, tls: TLSClientSettings = TLSClientSettings()) throws -> ConnectClient {
        try ConnectClient(configuration: .init(baseURL: baseURL, tls: tls, credential: credential))
    }
}
