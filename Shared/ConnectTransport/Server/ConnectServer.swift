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
        /// A connection with no request arriving or being answered for this long is closed
        /// (GOAWAY first on HTTP/2). Bytes alone (a trickle, PINGs) do not keep it open.
        public var idleTimeout: TimeAmount
        /// How long a begun request has to arrive whole, and a peer has to take our answers.
        public var requestTimeout: TimeAmount
        /// Connections open at once; one more is closed as soon as it is accepted. Lowered at
        /// start to what the open-file limit allows.
        public var maxConnections: Int
        /// Connections open at once from one client address.
        public var maxConnectionsPerClient: Int
        public var bodyBudget: BodyBudget

        public init(
            host: String = "127.0.0.1", port: Int, tls: TLSFiles? = nil, http2: HTTP2Limits = HTTP2Limits(),
            idleTimeout: TimeAmount = .seconds(300), requestTimeout: TimeAmount = .seconds(30),
            maxConnections: Int = 10_000, maxConnectionsPerClient: Int = 256, bodyBudget: BodyBudget = BodyBudget()
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.http2 = http2
            self.idleTimeout = idleTimeout
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
            self.maxConnectionsPerClient = maxConnectionsPerClient
            self.bodyBudget = bodyBudget
        }
    }

    private let configuration: Configuration
    private let endpoint: ConnectEndpoint
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// A flood of refused connections logs a line a minute, not a line each.
    private let refusals: RateLimitedLog

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var perClient: [String: Int] = [:]
        /// `maxConnections` as the open-file limit allows, set at start.
        var connectionLimit = Int.max
        var drained: CheckedContinuation<Void, Never>?
    }

    public init(configuration: Configuration, endpoint: ConnectEndpoint, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.endpoint = endpoint
        self.group = group
        self.logger = logger
        refusals = RateLimitedLog(logger: logger, interval: .seconds(60))
    }

    /// Binds the port and starts accepting; returns the bound address (useful with port 0).
    public func start() async throws -> SocketAddress {
        let sslContext = try configuration.tls?.makeServerContext()
        let settings = ServerConnectionSettings(
            http2: HTTP2Limits(
                maxConcurrentStreams: configuration.http2.maxConcurrentStreams,
                initialWindowSize: configuration.http2.initialWindowSize,
                maxHeaderListSize: configuration.http2.maxHeaderListSize,
                maxBodyBytes: endpoint.maxBodyBytes,
                connectionBodyBudget: configuration.bodyBudget.perConnection),
            idleTimeout: configuration.idleTimeout, requestTimeout: configuration.requestTimeout,
            bodyBudget: configuration.bodyBudget, pool: BodyMemoryPool(bytes: configuration.bodyBudget.perProcess),
            tickInterval: .milliseconds(min(1000, max(50, configuration.requestTimeout.nanoseconds / 4_000_000))))
        let files = OpenFileLimit.raiseToHardLimit()
        let limit = min(configuration.maxConnections, files.connectionsAllowed)
        state.withLockedValue { $0.connectionLimit = limit }
        logger.info(
            "connection limits",
            metadata: [
                "max_connections": "\(limit)", "configured": "\(configuration.maxConnections)", "open_file_limit": "\(files.soft)",
                "per_client": "\(configuration.maxConnectionsPerClient)"
            ])
        let endpoint = self.endpoint
        let logger = self.logger
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                // Out of descriptors, accept fails until one is free: back off instead of spinning, and say so.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(AcceptBackoffHandler(), AcceptFailureLogger(logger: logger))
                }
            }
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
                    try operations.addHandler(ProtocolSniffer(endpoint: endpoint, settings: settings, logger: logger))
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
        // Wait for the last connection to close, or the timeout, whichever comes first.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let done = self.state.withLockedValue { state -> Bool in
                        if state.connections.isEmpty { return true }
                        state.drained = continuation
                        return false
                    }
                    if done { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            self.state.withLockedValue { $0.drained.take() }?.resume()
        }
        let remaining = state.withLockedValue { Array($0.connections.values) }
        if !remaining.isEmpty {
            logger.warning("closing connections that did not drain in time", metadata: ["count": "\(remaining.count)"])
        }
        for connection in remaining {
            try? await connection.close()
        }
    }

    /// Records a new connection; false when the server, or this client's address, already holds
    /// its maximum.
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let client = channel.remoteAddress?.ipAddress ?? "?"
        let perClientLimit = configuration.maxConnectionsPerClient
        enum Refusal { case total(Int), perClient }
        let refusal = state.withLockedValue { state -> Refusal? in
            guard state.connections.count < state.connectionLimit else { return .total(state.connectionLimit) }
            guard state.perClient[client, default: 0] < perClientLimit else { return .perClient }
            state.connections[id] = channel
            state.perClient[client, default: 0] += 1
            return nil
        }
        switch refusal {
        case .total(let limit):
            refusals.warning("refusing connections: at the connection limit", metadata: ["limit": "\(limit)"])
            return false
        case .perClient:
            refusals.warning(
                "refusing connections: a client address is at its connection limit",
                metadata: ["limit": "\(perClientLimit)", "client": "\(client)"])
            return false
        case nil:
            break
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            guard let self else { return }
            let drained = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                state.connections.removeValue(forKey: id)
                state.perClient[client, default: 1] -= 1
                if state.perClient[client] == 0 { state.perClient.removeValue(forKey: client) }
                return state.connections.isEmpty ? state.drained.take() : nil
            }
            drained?.resume()
        }
        return true
    }
}
