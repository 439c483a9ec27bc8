import ArgumentParser
import ConnectTransport
import Foundation
import Logging
import NIOCore
import RPCCore

/// The flags every service executable takes (DESIGN.md section 2); where a service finds its
/// peers is its own flag, declared by its command. Each can also be given as its
/// upper-snake environment variable (`--data-dir` as `DATA_DIR`); a flag wins over the variable.
public struct ServiceOptions: ParsableArguments, Sendable {
    @Option(help: "Address to listen on (HOST).") var host: String?
    @Option(help: "Port to listen on (PORT).") var port: Int?
    @Option(help: "Directory for this service's database (DATA_DIR).") var dataDir: String?
    @Option(
        help:
            "sqlite: (the default, a file in --data-dir) or postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require|verify-full] (DATABASE_URL, or a file in DATABASE_URL_FILE)."
    )
    var databaseURL: String?
    @Option(help: "PEM certificate chain; enables TLS (TLS_CERT).") var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert (TLS_KEY).") var tlsKey: String?
    @Option(help: "PEM CA bundle; requires client certificates (TLS_CLIENT_CA).") var tlsClientCA: String?
    @Option(
        help:
            "PEM CA bundle trusted for the https:// peers this service calls, instead of the system's; with --tls-cert, that certificate is presented to peers that require one (PEER_CA)."
    )
    var peerCA: String?
    @Option(help: "Largest request body in bytes, also after decompression (MAX_BODY_BYTES).") var maxBodyBytes: Int?
    @Option(help: "Max concurrent HTTP/2 streams per connection (MAX_CONCURRENT_STREAMS).") var maxConcurrentStreams: Int?
    @Option(help: "Seconds before an idle connection is closed (IDLE_TIMEOUT_SECONDS).") var idleTimeoutSeconds: Int?
    @Option(help: "Connections open at once; more are closed on arrival. Kept below the open-file limit (MAX_CONNECTIONS).") var maxConnections: Int?
    @Option(help: "Connections open at once from one client address (MAX_CONNECTIONS_PER_CLIENT).") var maxConnectionsPerClient: Int?
    @Option(help: "Seconds a request has to arrive whole, headers and body, once begun (REQUEST_TIMEOUT_SECONDS).") var requestTimeoutSeconds: Int?
    @Option(help: "Bytes of unfinished request bodies one connection may hold; default 4 MiB (CONNECTION_BODY_BUDGET).") var connectionBodyBudget:
        Int?
    @Option(help: "Bytes of unfinished request bodies the whole process may hold; default 32 MiB (PROCESS_BODY_BUDGET).") var processBodyBudget: Int?
    @Option(help: "Serve /metrics on this port only, not on the service port (METRICS_PORT).") var metricsPort: Int?
    @Option(help: "Address for --metrics-port; default 127.0.0.1 (METRICS_HOST).") var metricsHost: String?
    @Option(help: "Event-loop threads serving connections; default one per core (EVENT_LOOP_THREADS).") var eventLoopThreads: Int?
    @Option(help: "trace, debug, info, notice, warning, error or critical (LOG_LEVEL).") var logLevel: String?
    @Option(help: "This service's secret, presented when it calls other services (SERVICE_SECRET, or a file in SERVICE_SECRET_FILE).")
    var serviceSecret: String?
    @Option(help: "Services allowed to call internal-only methods: name=sha256hex,... (TRUSTED_SERVICES).") var trustedServices: String?

    public init() {}

    /// A flag's value, else its environment variable's (unless empty), else nil. Executables with
    /// flags of their own resolve them the same way.
    public static func resolve(_ flag: String?, _ variable: String, environment: [String: String]) -> String? {
        if let flag { return flag }
        if let value = environment[variable], !value.isEmpty { return value }
        return nil
    }

    /// A secret: the flag, else the variable, else the contents of the file the variable
    /// `<variable>_FILE` names (how Compose and Kubernetes hand secrets over), without its trailing
    /// newline. Setting both the variable and its file is refused, as is a file that cannot be read
    /// or is empty; the error names the file, never the secret.
    public static func resolveSecret(_ flag: String?, _ variable: String, environment: [String: String]) throws -> String? {
        let direct = resolve(flag, variable, environment: environment)
        guard let path = environment[variable + "_FILE"], !path.isEmpty else { return direct }
        guard direct == nil else {
            throw ConfigurationError("\(variable) and \(variable)_FILE are both set: give the secret one way")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(variable)_FILE: cannot read \(path)")
        }
        var secret = String(decoding: data, as: UTF8.self)
        while let last = secret.last, last == "\n" || last == "\r" { secret.removeLast() }
        guard !secret.isEmpty else { throw ConfigurationError("\(variable)_FILE: \(path) is empty") }
        return secret
    }

    /// Resolves flags, then environment, then the service's defaults, and checks the result.
    public func settings(service: ServiceIdentity, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceSettings {
        func pick(_ flag: String?, _ variable: String) -> String? {
            Self.resolve(flag, variable, environment: environment)
        }
        func number(_ flag: Int?, _ variable: String) throws -> Int? {
            if let flag { return flag }
            guard let text = pick(nil, variable) else { return nil }
            guard let value = Int(text) else { throw ConfigurationError("\(variable) must be a whole number, got '\(text)'") }
            return value
        }
        let port = try number(port, "PORT") ?? service.defaultPort
        guard (0...65535).contains(port) else { throw ConfigurationError("port \(port) is out of range 0-65535") }
        let maxBody = try number(maxBodyBytes, "MAX_BODY_BYTES") ?? (1 << 20)
        guard maxBody > 0 else { throw ConfigurationError("the body limit must be positive") }
        let streams = try number(maxConcurrentStreams, "MAX_CONCURRENT_STREAMS") ?? 250
        guard streams > 0 else { throw ConfigurationError("max concurrent streams must be positive") }
        let idle = try number(idleTimeoutSeconds, "IDLE_TIMEOUT_SECONDS") ?? 300
        guard idle > 0 else { throw ConfigurationError("the idle timeout must be positive") }

        var tls: TLSFiles?
        switch (pick(tlsCert, "TLS_CERT"), pick(tlsKey, "TLS_KEY")) {
        case (let cert?, let key?):
            tls = TLSFiles(certificatePath: cert, privateKeyPath: key, clientCAPath: pick(tlsClientCA, "TLS_CLIENT_CA"))
        case (nil, nil):
            if pick(tlsClientCA, "TLS_CLIENT_CA") != nil {
                throw ConfigurationError("--tls-client-ca needs --tls-cert and --tls-key")
            }
        default:
            throw ConfigurationError("--tls-cert and --tls-key go together")
        }
        let connections = try number(maxConnections, "MAX_CONNECTIONS") ?? 10_000
        guard connections > 0 else { throw ConfigurationError("the connection limit must be positive") }
        let perClient = try number(maxConnectionsPerClient, "MAX_CONNECTIONS_PER_CLIENT") ?? 256
        guard perClient > 0 else { throw ConfigurationError("the per-client connection limit must be positive") }
        let requestTimeout = try number(requestTimeoutSeconds, "REQUEST_TIMEOUT_SECONDS") ?? 30
        guard requestTimeout > 0 else { throw ConfigurationError("the request timeout must be positive") }
        let connectionBudget = try number(connectionBodyBudget, "CONNECTION_BODY_BUDGET") ?? max(4 << 20, maxBody)
        guard connectionBudget >= maxBody else {
            throw ConfigurationError("--connection-body-budget (\(connectionBudget)) must be at least --max-body-bytes (\(maxBody))")
        }
        let processBudget = try number(processBodyBudget, "PROCESS_BODY_BUDGET") ?? max(32 << 20, connectionBudget)
        guard processBudget >= connectionBudget else {
            throw ConfigurationError("--process-body-budget (\(processBudget)) must be at least --connection-body-budget (\(connectionBudget))")
        }
        let metricsPort = try number(metricsPort, "METRICS_PORT")
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ConfigurationError("metrics port \(metricsPort) is out of range 0-65535") }
        let threads = try number(eventLoopThreads, "EVENT_LOOP_THREADS") ?? System.coreCount
        guard (1...256).contains(threads) else { throw ConfigurationError("event-loop threads must be 1 to 256") }
        let levelText = pick(logLevel, "LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ConfigurationError("unknown log level '\(levelText)'")
        }
        return ServiceSettings(
            service: service,
            host: pick(host, "HOST") ?? "127.0.0.1",
            port: port,
            dataDirectory: pick(dataDir, "DATA_DIR") ?? "./data/\(service.name)",
            database: try DatabaseURL(parsing: Self.resolveSecret(databaseURL, "DATABASE_URL", environment: environment) ?? "sqlite:"),
            tls: tls,
            maxBodyBytes: maxBody,
            maxConcurrentStreams: UInt32(streams),
            idleTimeout: .seconds(Int64(idle)),
            maxConnections: connections,
            maxConnectionsPerClient: perClient,
            requestTimeout: .seconds(Int64(requestTimeout)),
            bodyBudget: BodyBudget(perConnection: connectionBudget, perProcess: processBudget),
            metricsListener: metricsPort.map { (host: pick(metricsHost, "METRICS_HOST") ?? "127.0.0.1", port: $0) },
            eventLoopThreads: threads,
            logLevel: level,
            peerTLS: TLSClientSettings(
                trustedCAPath: pick(peerCA, "PEER_CA"), clientCertificatePath: tls?.certificatePath, clientPrivateKeyPath: tls?.privateKeyPath),
            credential: try Self.resolveSecret(serviceSecret, "SERVICE_SECRET", environment: environment).map {
                ServiceCredential(serviceName: service.name, secret: $0)
            },
            trustedServices: try TrustedServices(parsing: pick(trustedServices, "TRUSTED_SERVICES") ?? ""))
    }
}

/// A service's name and default port.
public struct ServiceIdentity: Sendable {
    public let name: String
    public let defaultPort: Int

    public init(name: String, defaultPort: Int) {
        self.name = name
        self.defaultPort = defaultPort
    }
}

/// Everything a service process is configured with, resolved and checked.
public struct ServiceSettings: Sendable {
    public var service: ServiceIdentity
    public var host: String
    public var port: Int
    public var dataDirectory: String
    public var database: DatabaseURL
    public var tls: TLSFiles?
    public var maxBodyBytes: Int
    public var maxConcurrentStreams: UInt32
    public var idleTimeout: TimeAmount
    public var maxConnections: Int
    public var maxConnectionsPerClient: Int
    /// How long a begun request has to arrive whole.
    public var requestTimeout: TimeAmount
    public var bodyBudget: BodyBudget
    /// Where /metrics is served instead of the service port, when set.
    public var metricsListener: (host: String, port: Int)?
    public var eventLoopThreads: Int
    public var logLevel: Logger.Level
    /// How this service calls https:// peers: the CA it trusts for them, the certificate it presents.
    public var peerTLS: TLSClientSettings
    /// What this service presents to others; nil when no secret is configured.
    public var credential: ServiceCredential?
    public var trustedServices: TrustedServices
}
