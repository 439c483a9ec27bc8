import Foundation
import ConnectTransport
import GRDB
import Logging
import NIOCore
import NIOPosix
import Prometheus
import RPCCore
import ServiceLifecycle

/// What a service brings to the runtime: its name, its schema and its RPC handlers.
public struct ServiceDefinition: Sendable {
    public var identity: ServiceIdentity
    /// Fully qualified names of the RPC services it serves (for health checks by name).
    public var rpcServices: Set<String>
    public var migrator: DatabaseMigrator
    /// Registers the handlers; called once at start with the opened database.
    public var register: @Sendable (inout RPCRouter, ServiceResources) throws -> Void

    public init(identity: ServiceIdentity, rpcServices: Set<String>, migrator: DatabaseMigrator,
                register: @escaping @Sendable (inout RPCRouter, ServiceResources) throws -> Void) {
        self.identity = identity
        self.rpcServices = rpcServices
        self.migrator = migrator
        self.register = register
    }
}

/// What handlers get from the runtime.
public struct ServiceResources: Sendable {
    public let settings: ServiceSettings
    public let database: ServiceDatabase
    public let logger: Logger
}

/// Runs one service: opens its database, builds its router, serves it on its port and drains on
/// shutdown. Built from its definition and settings alone, so tests can run it in-process.
public final class ServiceHost: Service, Sendable {
    public let settings: ServiceSettings
    public let database: ServiceDatabase
    public let health: HealthService
    public let metrics: ServerMetrics
    private let server: ConnectServer
    private let logger: Logger

    public init(definition: ServiceDefinition, settings: ServiceSettings, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.settings = settings
        self.logger = logger
        database = try ServiceDatabase(directory: settings.dataDirectory, name: definition.identity.name, migrator: definition.migrator)
        health = HealthService(services: definition.rpcServices)
        metrics = ServerMetrics(registry: PrometheusCollectorRegistry())

        var router = RPCRouter()
        health.register(in: &router)
        try definition.register(&router, ServiceResources(settings: settings, database: database, logger: logger))

        let database = self.database
        let health = self.health
        let metrics = self.metrics
        let plainRoutes: [String: PlainRoute] = [
            "/healthz": { .text(200, "ok\n") },
            "/readyz": {
                if health.isDraining { return .text(503, "draining\n") }
                return await database.isReachable() ? .text(200, "ready\n") : .text(503, "database unreachable\n")
            },
            "/metrics": {
                HTTPResponse(status: 200, headers: [("content-type", "text/plain; version=0.0.4")],
                             body: ByteBuffer(bytes: metrics.exposition()))
            },
        ]
        let endpoint = ConnectEndpoint(
            router: router, plainRoutes: plainRoutes, trustedServices: settings.trustedServices,
            configuration: .init(maxBodyBytes: settings.maxBodyBytes), metrics: metrics, logger: logger)
        server = ConnectServer(
            configuration: .init(host: settings.host, port: settings.port, tls: settings.tls,
                                 http2: .init(maxConcurrentStreams: settings.maxConcurrentStreams, maxBodyBytes: settings.maxBodyBytes),
                                 idleTimeout: settings.idleTimeout, maxConnections: settings.maxConnections),
            endpoint: endpoint, group: group, logger: logger)
    }

    /// Binds the port; returns the address actually bound.
    public func start() async throws -> SocketAddress {
        let address = try await server.start()
        logger.info("listening", metadata: [
            "service": "\(settings.service.name)", "host": "\(settings.host)", "port": "\(address.port ?? 0)",
            "tls": "\(settings.tls != nil)", "data_dir": "\(settings.dataDirectory)",
        ])
        return address
    }

    /// Reports NOT_SERVING, sends GOAWAY, lets in-flight calls finish (up to `timeout`), closes.
    public func shutdown(timeout: Duration = .seconds(8)) async {
        logger.info("draining", metadata: ["service": "\(settings.service.name)"])
        health.startDraining()
        await server.shutdown(timeout: timeout)
        logger.info("stopped", metadata: ["service": "\(settings.service.name)"])
    }

    /// The lifecycle entry point: serve until a shutdown signal, then drain.
    public func run() async throws {
        _ = try await start()
        try? await gracefulShutdown()
        await shutdown()
    }
}

/// The whole of an executable's `main`: parse flags, set up logging, run the service until SIGTERM
/// or SIGINT, exit.
public enum ServiceMain {
    public static func run(_ definition: ServiceDefinition, arguments: [String] = Array(CommandLine.arguments.dropFirst())) async {
        let options: ServiceOptions
        let settings: ServiceSettings
        do {
            options = try ServiceOptions.parse(arguments)
            settings = try options.settings(service: definition.identity)
        } catch {
            ServiceOptions.exit(withError: error)
        }
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: definition.identity.name)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.eventLoopThreads)
        do {
            let host = try ServiceHost(definition: definition, settings: settings, logger: logger, group: group)
            let services = ServiceGroup(configuration: .init(
                services: [.init(service: host)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await services.run()
        } catch {
            logger.critical("cannot run", metadata: ["error": "\(error)"])
            Foundation.exit(1)
        }
    }
}
