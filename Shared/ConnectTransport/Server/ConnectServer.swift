import Logging
import NGHTTP2
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Listens on one port for cleartext HTTP/2 (prior knowledge) and HTTP/1.1, or for TLS with ALPN,
/// and answers every request through a `ConnectEndpoint`.
public final class ConnectServer: Sendable {
    /// Socket-level settings of a server.
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port (tests).
        public var port: Int
        public var tls: TLSFiles?
        public var http2: HTTP2Limits
        /// A connection with no traffic for this long is closed (GOAWAY first on HTTP/2).
        public var idleTimeout: TimeAmount
        /// Connections open at once; one more is closed as soon as it is accepted.
        public var maxConnections: Int

        public init(host: String = "127.0.0.1", port: Int, tls: TLSFiles? = nil, http2: HTTP2Limits = HTTP2Limits(),
                    idleTimeout: TimeAmount = .seconds(300), maxConnections: Int = 10_000) {
            self.host = host
            self.port = port
            self.tls = tls
            self.http2 = http2
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
        }
    }

    private let configuration: Configuration
    private let endpoint: ConnectEndpoint
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    public init(configuration: Configuration, endpoint: ConnectEndpoint, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.endpoint = endpoint
        self.group = group
        self.logger = logger
    }

    /// Binds the port and starts accepting; returns the bound address (useful with port 0).
    public func start() async throws -> SocketAddress {
        let sslContext = try configuration.tls?.makeServerContext()
        let limits = HTTP2Limits(maxConcurrentStreams: configuration.http2.maxConcurrentStreams,
                                 initialWindowSize: configuration.http2.initialWindowSize,
                                 maxHeaderListSize: configuration.http2.maxHeaderListSize,
                                 maxBodyBytes: endpoint.maxBodyBytes)
        let endpoint = self.endpoint
        let logger = self.logger
        let idleTimeout = configuration.idleTimeout
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [weak self] channel in
                guard let self, self.track(channel) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let sslContext {
                        try operations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try operations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try operations.addHandler(ProtocolSniffer(endpoint: endpoint, limits: limits, logger: logger))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLockedValue { $0.listener = channel }
        return channel.localAddress!
    }

    /// Stops accepting, asks every connection to drain (GOAWAY on HTTP/2), waits up to `timeout`
    /// for in-flight calls to finish, then closes what is left.
    public func shutdown(timeout: Duration = .seconds(8)) async {
        let (listener, connections) = state.withLockedValue { ($0.listener, Array($0.connections.values)) }
        try? await listener?.close()
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ServerDrainEvent())
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, state.withLockedValue({ !$0.connections.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let remaining = state.withLockedValue { Array($0.connections.values) }
        if !remaining.isEmpty {
            logger.warning("closing connections that did not drain in time", metadata: ["count": "\(remaining.count)"])
        }
        for connection in remaining {
            try? await connection.close()
        }
    }

    /// Records a new connection; false when the server already holds its maximum.
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLockedValue { state -> Bool in
            guard state.connections.count < configuration.maxConnections else { return false }
            state.connections[id] = channel
            return true
        }
        guard admitted else {
            logger.warning("refusing a connection: at the connection limit", metadata: ["limit": "\(configuration.maxConnections)"])
            return false
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
        return true
    }
}
