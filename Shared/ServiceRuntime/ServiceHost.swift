import ConnectTransport
import Foundation
import GRDB
import Logging
import NIOCore
import NIOPosix
import Prometheus
import RPCCore
import ServiceLifecycle
import Synchronization

/// What a service brings to the runtime: its name, its schema and its RPC handlers.
public struct ServiceDefinition: Sendable {
    public var identity: ServiceIdentity
    /// Fully qualified names of the RPC services it serves (for health checks by name).
    public var rpcServices: Set<String>
    public var migrator: DatabaseMigrator
    /// The same schema for PostgreSQL; nil when the service's storage is SQLite only, and then a
    /// postgres:// `--database-url` is refused at start.
    public var postgresMigrations: [PostgresMigration]?
    /// The database holds secrets (private keys): the service refuses to start if others may read it.
    public var databaseHoldsSecrets = false
    /// Registers the handlers and background work; called once at start with the opened database.
    public var register: @Sendable (inout ServiceSetup, ServiceResources) throws -> Void

    public init(
        identity: ServiceIdentity, rpcServices: Set<String>, migrator: DatabaseMigrator,
        postgresMigrations: [PostgresMigration]? = nil,
        register: @escaping @Sendable (inout ServiceSetup, ServiceResources) throws -> Void
    ) {
        self.identity = identity
        self.rpcServices = rpcServices
        self.migrator = migrator
        self.postgresMigrations = postgresMigrations
        self.register = register
    }
}

/// What a service's `register` fills in: the RPC handlers, plain HTTP routes (webhooks) by path,
/// and work that runs beside them.
public struct ServiceSetup: Sendable {
    public var router: RPCRouter
    public var plainRoutes: [String: PlainRoute] = [:]
    /// Work the service does beside answering calls (an outbox sender, a saga runner, a listener
    /// for other replicas' changes): started once the port is bound, stopped when the service drains.
    public var backgroundWork: [any Service] = []
    /// Work that must be done before the service answers anything (loading keys from the
    /// database): run by `start`, after migrating, before binding the port.
    public var startup: [@Sendable () async throws -> Void] = []
}

/// What handlers get from the runtime.
public struct ServiceResources: Sendable {
    public let settings: ServiceSettings
    public let database: ServiceDatabase
    public let logger: Logger
    /// The service's Prometheus series (served at /metrics), for counters of its own.
    public let metrics: ServerMetrics
}

/// Runs one service: opens its database, builds its router, serves it on its port and drains on
/// shutdown. Built from its definition and settings alone, so tests can run it in-process.
public final class ServiceHost: Service, Sendable {
    public let settings: ServiceSettings
    public let database: ServiceDatabase
    public let health: HealthService
    public let metrics: ServerMetrics
    /// The Connect protocol over the service's router, which the server serves on its port; tests
    /// call it in-process too (`Upstream.inProcess`).
    public let endpoint: ConnectEndpoint
    private let server: ConnectServer
    /// The listener for /metrics alone, when `--metrics-port` keeps it off the service port.
    private let metricsServer: ConnectServer?
    private let logger: Logger
    private let backgroundWork: [any Service]
    private let startup: [@Sendable () async throws -> Void]
    /// PostgreSQL's schema, brought up to date by `start` before anything is served.
    private let postgresMigrations: (service: String, migrations: [PostgresMigration])?
    /// The background work's service group, running from `start` until `shutdown`.
    private let runningWork = Mutex<(group: ServiceGroup, task: Task<Void, Never>)?>(nil)

    /// `metricsRegistry` holds the series /metrics serves; the process's own (tracing's) may already be in it.
    public init(
        definition: ServiceDefinition, settings: ServiceSettings, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) throws {
        self.settings = settings
        self.logger = logger
        PrivateFiles.restrictNewFiles()
        switch settings.database {
        case .sqlite:
            database = try .sqlite(
                directory: settings.dataDirectory, name: definition.identity.name, migrator: definition.migrator,
                holdsSecrets: definition.databaseHoldsSecrets)
            postgresMigrations = nil
        case .postgres(let configuration, _):
            guard let migrations = definition.postgresMigrations else {
                throw ConfigurationError("\(definition.identity.name) keeps its data in SQLite only so far: leave --database-url at sqlite:")
            }
            database = .postgres(PostgresBackend(configuration: configuration, logger: logger))
            postgresMigrations = (definition.identity.name, migrations)
        }
        health = HealthService(services: definition.rpcServices)
        metrics = ServerMetrics(registry: metricsRegistry)

        var setup = ServiceSetup(router: RPCRouter())
        health.register(in: &setup.router)
        try definition.register(&setup, ServiceResources(settings: settings, database: database, logger: logger, metrics: metrics))
        let router = setup.router
        backgroundWork = setup.backgroundWork
        startup = setup.startup
        let serviceRoutes = setup.plainRoutes

        let database = self.database
        let health = self.health
        let metrics = self.metrics
        let runtimeRoutes: [String: PlainRoute] = [
            "/healthz": .get { .text(200, "ok\n") },
            "/readyz": .get {
                if health.isDraining { return .text(503, "draining\n") }
                return await database.isReachable() ? .text(200, "ready\n") : .text(503, "database unreachable\n")
            },
            "/metrics": .get {
                HTTPResponse(
                    status: 200, headers: [("content-type", "text/plain; version=0.0.4")],
                    body: ByteBuffer(bytes: metrics.exposition()))
            }
        ]
        let plainRoutes = try runtimeRoutes.merging(serviceRoutes) { _, _ in
            throw ConfigurationError("a service route reuses one of /healthz, /readyz, /metrics")
        }.filter { path, _ in settings.metricsListener == nil || path != "/metrics" }
        let endpoint = ConnectEndpoint(
            router: router, plainRoutes: plainRoutes, trustedServices: settings.trustedServices,
            configuration: .init(maxBodyBytes: settings.maxBodyBytes), metrics: metrics, logger: logger)
        self.endpoint = endpoint
        let connectionLimits = { (host: String, port: Int, tls: TLSFiles?) in
            ConnectServer.Configuration(
                host: host, port: port, tls: tls,
                http2: .init(maxConcurrentStreams: settings.maxConcurrentStreams, maxBodyBytes: settings.maxBodyBytes),
                idleTimeout: settings.idleTimeout, requestTimeout: settings.requestTimeout, maxConnections: settings.maxConnections,
                maxConnectionsPerClient: settings.maxConnectionsPerClient, bodyBudget: settings.bodyBudget)
        }
        server = ConnectServer(
            configuration: connectionLimits(settings.host, settings.port, settings.tls),
            endpoint: endpoint, group: group, logger: logger)
        metricsServer = settings.metricsListener.map { listener in
            let metricsEndpoint = ConnectEndpoint(
                router: RPCRouter(), plainRoutes: ["/metrics": runtimeRoutes["/metrics"]!], trustedServices: .none,
                configuration: .init(maxBodyBytes: 1024), metrics: metrics, logger: logger)
            return ConnectServer(
                configuration: connectionLimits(listener.host, listener.port, nil),
                endpoint: metricsEndpoint, group: group, logger: logger)
        }
    }

    /// Where /metrics is served when `--metrics-port` is set (useful with port 0), once started.
    public private(set) var metricsAddress: SocketAddress? {
        get { metricsAddressBox.withLock { $0 } }
        set { metricsAddressBox.withLock { $0 = newValue } }
    }
    private let metricsAddressBox = Mutex<SocketAddress?>(nil)

    /// Migrates a PostgreSQL database, runs the start-up work, binds the port; returns the address actually bound.
    public func start() async throws -> SocketAddress {
        try await migrate()
        let address = try await server.start()
        if let metricsServer {
            let metricsAddress = try await metricsServer.start()
            self.metricsAddress = metricsAddress
            logger.info("serving /metrics apart", metadata: ["host": "\(metricsAddress.ipAddress ?? "?")", "port": "\(metricsAddress.port ?? 0)"])
        }
        logger.info(
            "listening",
            metadata: [
                "service": "\(settings.service.name)", "host": "\(settings.host)", "port": "\(address.port ?? 0)",
                "tls": "\(settings.tls != nil)", "database": "\(settings.database.description(dataDirectory: settings.dataDirectory))"
            ])
        startBackgroundWork()
        return address
    }

    /// Starts the background work without binding a port, for a service called only in-process
    /// through `endpoint`; `shutdown` stops it.
    public func startInProcess() async throws {
        try await migrate()
        startBackgroundWork()
    }

    /// Migrates a PostgreSQL database, then runs the service's start-up work.
    private func migrate() async throws {
        do {
            if case .postgres(let postgres) = database, let postgresMigrations {
                try await postgres.migrate(service: postgresMigrations.service, migrations: postgresMigrations.migrations)
            }
            for work in startup { try await work() }
        } catch {
            await database.close()
            throw error
        }
    }

    private func startBackgroundWork() {
        if !backgroundWork.isEmpty {
            // One group for all of it, stopped (gracefully, between items) by `shutdown`.
            let group = ServiceGroup(configuration: .init(services: backgroundWork.map { .init(service: $0) }, logger: logger))
            let logger = self.logger
            let task = Task {
                do { try await group.run() } catch { logger.error("background work stopped", metadata: ["error": "\(error)"]) }
            }
            runningWork.withLock { $0 = (group, task) }
        }
    }

    /// Reports NOT_SERVING, sends GOAWAY, lets in-flight calls finish (up to `timeout`), closes.
    public func shutdown(timeout: Duration = .seconds(8)) async {
        logger.info("draining", metadata: ["service": "\(settings.service.name)"])
        health.startDraining()
        await server.shutdown(timeout: timeout)
        await metricsServer?.shutdown(timeout: .seconds(1))
        if let running = runningWork.withLock({ current in
            defer { current = nil }
            return current
        }) {
            await running.group.triggerGracefulShutdown()
            await running.task.value
        }
        await database.close()
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
        let settings: ServiceSettings
        do {
            settings = try ServiceOptions.parse(arguments).settings(service: definition.identity)
        } catch {
            ServiceOptions.exit(withError: error)
        }
        await run(definition, settings: settings)
    }

    /// Runs `definition` with settings already parsed (for executables with flags of their own).
    public static func run(_ definition: ServiceDefinition, settings: ServiceSettings) async {
        bootstrapLogging(level: settings.logLevel)
        let logger = Logger(label: definition.identity.name)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.eventLoopThreads)
        do {
            let metricsRegistry = PrometheusCollectorRegistry()
            let tracing = try TraceExport.bootstrap(serviceName: definition.identity.name, metrics: metricsRegistry)
            let host = try ServiceHost(definition: definition, settings: settings, logger: logger, group: group, metricsRegistry: metricsRegistry)
            // The group stops its services in reverse order: the service drains first, then the
            // exporter sends what its calls left queued.
            let services = ServiceGroup(
                configuration: .init(
                    services: (tracing.map { [.init(service: $0)] } ?? []) + [.init(service: host)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await services.run()
        } catch {
            logger.critical("cannot run", metadata: ["error": "\(error)"])
            Foundation.exit(1)
        }
    }

    /// Logs go to standard error, one line per event, at `level` and above; a line written inside
    /// a traced call carries its `trace_id` and `span_id`.
    public static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap(
            { label, metadataProvider in
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
                handler.logLevel = level
                return handler
            }, metadataProvider: TraceSampling.loggingMetadata)
    }
}
