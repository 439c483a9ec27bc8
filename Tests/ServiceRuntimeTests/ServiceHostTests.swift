import ConnectTransport
import Contracts
import Foundation
import GRDB
import Logging
import RPCCore
import ServiceRuntime
import TestSupport
import Testing

/// A service host run in-process: its database, its probes, its health and its metrics.
@Suite(.timeLimit(.minutes(2))) struct ServiceHostTests {
    private func makeHost(arguments: [String] = []) throws -> (ServiceHost, String) {
        let directory = NSTemporaryDirectory() + "service-\(UUID().uuidString)"
        let definition = ServiceDefinition(
            identity: ServiceIdentity(name: "sample", defaultPort: 0), rpcServices: ["sample.v1.Sample"],
            migrator: {
                var migrator = DatabaseMigrator()
                migrator.registerMigration("v1 things") { db in
                    try db.create(table: "thing") { $0.autoIncrementedPrimaryKey("id") }
                }
                return migrator
            }()
        ) { setup, _ in
            Echo.register(in: &setup.router)
        }
        let settings = try ServiceOptions.parse(["--port", "0", "--data-dir", directory] + arguments)
            .settings(service: definition.identity, environment: [:])
        var logger = Logger(label: "sample")
        logger.logLevel = .warning
        return (try ServiceHost(definition: definition, settings: settings, logger: logger), directory)
    }

    @Test func opensAndMigratesItsOwnDatabase() async throws {
        let (host, directory) = try makeHost()
        #expect(FileManager.default.fileExists(atPath: directory + "/sample.sqlite"))
        let migrations = try await host.database.pool.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(Set(migrations) == ["runtime v1: service metadata", "v1 things"])
        // Opening again applies nothing twice.
        let (again, _) = try makeHostReopening(directory)
        #expect(try await again.database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM grdb_migrations") } == 2)
    }

    private func makeHostReopening(_ directory: String) throws -> (ServiceHost, String) {
        let settings = try ServiceOptions.parse(["--port", "0", "--data-dir", directory])
            .settings(service: ServiceIdentity(name: "sample", defaultPort: 0), environment: [:])
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 things") { db in try db.create(table: "thing") { $0.autoIncrementedPrimaryKey("id") } }
        let definition = ServiceDefinition(identity: settings.service, rpcServices: [], migrator: migrator) { _, _ in }
        return (try ServiceHost(definition: definition, settings: settings, logger: Logger(label: "sample")), directory)
    }

    /// With --metrics-port, /metrics is on its own listener (on loopback unless told otherwise)
    /// and no longer on the service port, where anyone who can call the service could read it.
    @Test func metricsPortKeepsMetricsOffTheServicePort() async throws {
        let (host, _) = try makeHost(arguments: ["--metrics-port", "0"])
        let port = try await host.start().port!
        let metricsPort = try #require(host.metricsAddress?.port)
        #expect(metricsPort != port)
        #expect(try await Curl.get("http://127.0.0.1:\(port)/healthz").status == 200)
        #expect(try await Curl.get("http://127.0.0.1:\(port)/metrics").status != 200)
        let metrics = try await Curl.get("http://127.0.0.1:\(metricsPort)/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("rpc_server_calls_total"), "\(metrics.body.prefix(300))")
        // The metrics listener serves nothing else.
        #expect(try await Curl.get("http://127.0.0.1:\(metricsPort)/healthz").status != 200)
        await host.shutdown(timeout: .seconds(1))
    }

    /// Data directories are 0700 and database files 0600 whatever the umask the process had, and
    /// a database that says it holds secrets is refused when others may read it.
    @Test func dataFilesArePrivateAndASharedKeyStoreIsRefused() async throws {
        umask(0o022)
        let (host, directory) = try makeHost()
        _ = try await host.start()
        try await host.database.pool.write { db in try db.execute(sql: "INSERT INTO thing DEFAULT VALUES") }
        #expect(PrivateFiles.mode(of: directory) == 0o700)
        #expect(PrivateFiles.mode(of: directory + "/sample.sqlite") == 0o600)
        #expect(PrivateFiles.mode(of: directory + "/sample.sqlite-wal") == 0o600)
        await host.shutdown(timeout: .seconds(1))

        chmod(directory + "/sample.sqlite", 0o644)
        #expect(throws: ConfigurationError.self) {
            try ServiceDatabase.sqlite(directory: directory, name: "sample", migrator: DatabaseMigrator(), holdsSecrets: true)
        }
        do {
            _ = try ServiceDatabase.sqlite(directory: directory, name: "sample", migrator: DatabaseMigrator(), holdsSecrets: true)
        } catch {
            #expect("\(error)".contains("chmod 600 \(directory)/sample.sqlite"), "\(error)")
        }
        // Without secrets, an old file is tightened instead.
        _ = try ServiceDatabase.sqlite(directory: directory, name: "sample", migrator: DatabaseMigrator())
        #expect(PrivateFiles.mode(of: directory + "/sample.sqlite") == 0o600)
    }

    @Test func servesHealthProbesAndMetricsThenReportsDraining() async throws {
        let (host, _) = try makeHost()
        let port = try await host.start().port!
        let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)"))
        #expect(try await client.call(Health.check, HealthCheckRequest()).status == .serving)
        #expect(try await client.call(Health.check, HealthCheckRequest(service: "sample.v1.Sample")).status == .serving)
        await #expect(throws: RPCError(.notFound, "unknown service 'other.v1.Other'")) {
            try await client.call(Health.check, HealthCheckRequest(service: "other.v1.Other"))
        }
        #expect(try await Curl.get("http://127.0.0.1:\(port)/readyz").status == 200)
        let metrics = try await Curl.get("http://127.0.0.1:\(port)/metrics")
        #expect(metrics.body.contains(#"rpc_server_calls_total{method="/grpc.health.v1.Health/Check",code="ok"} 2"#), "\(metrics.body)")
        #expect(metrics.body.contains("rpc_server_call_duration_seconds_bucket"))

        host.health.startDraining()
        #expect(try await client.call(Health.check, HealthCheckRequest()).status == .notServing)
        #expect(try await Curl.get("http://127.0.0.1:\(port)/readyz").status == 503)
        await client.close()
        await host.shutdown(timeout: .seconds(2))
    }

    @Test func drainingLetsInFlightCallsFinishAndRefusesNewOnes() async throws {
        let server = try await TestServer.start()
        let client = try server.client()
        let texts = (0..<50).map { "drain \($0) \(UUID())" }
        let inFlight = texts.map { text in
            Task { () -> Result<EchoResponse, RPCError> in
                do throws(RPCError) {
                    return .success(try await client.call(Echo.echo, EchoRequest(text: text, sleepMs: 500)))
                } catch { return .failure(error) }
            }
        }
        #expect(try await eventually { texts.allSatisfy(Echo.hasStarted) })
        await server.stop()
        var finished = 0
        for task in inFlight {
            if case .success = await task.result.get() { finished += 1 }
        }
        #expect(finished == 50)
        do {
            _ = try await client.call(Echo.echo, EchoRequest(text: "late"))
            Issue.record("a call after shutdown succeeded")
        } catch {
            #expect(error.code == .unavailable)
        }
        await client.close()
    }

    /// A client calling the router in-process (the rule tests' mode) gets what a client over HTTP/2
    /// gets: answers, the handler's errors, the access checks, compression and deadlines.
    @Test func inProcessCallsGetWhatTheWireGets() async throws {
        let (host, _) = try makeHost(arguments: ["--trusted-services", "caller=\(TrustedServices.digest(ofSecret: TestServer.secret))"])
        try await withStarted(host) { host in
            let port = try await host.start().port!
            let credential = ServiceCredential(serviceName: "caller", secret: TestServer.secret)
            let wrongCredential = ServiceCredential(serviceName: "caller", secret: "not the secret")
            func outcome(_ upstream: Upstream, credential: ServiceCredential?, _ method: RPCMethod<EchoRequest, EchoResponse>, _ request: EchoRequest)
                async throws -> String
            {
                try await withStarted(ConnectClient(upstream: upstream, credential: credential)) { client in
                    do {
                        let response = try await client.call(
                            method, request, options: .init(timeout: request.sleepMs > 0 ? .milliseconds(300) : .seconds(10)))
                        return "ok \(response.text.count) \(response.caller ?? "-")"
                    } catch let error as RPCError {
                        // Which side noticed the deadline first words it differently.
                        return error.code == .deadlineExceeded ? "deadlineExceeded" : "\(error.code) \(error.message)"
                    }
                }
            }
            let calls: [(ServiceCredential?, RPCMethod<EchoRequest, EchoResponse>, EchoRequest)] = [
                (nil, Echo.echo, EchoRequest(text: "hello")),
                (nil, Echo.echo, EchoRequest(text: "big", padTo: 5000)),
                (nil, Echo.echo, EchoRequest(text: "fail", failWith: "not_found")),
                (nil, Echo.echo, EchoRequest(text: "slow", sleepMs: 2000)),
                (nil, Echo.internalEcho, EchoRequest(text: "anonymous")),
                (wrongCredential, Echo.internalEcho, EchoRequest(text: "forged")),
                (credential, Echo.internalEcho, EchoRequest(text: "trusted"))
            ]
            var outcomes: [String] = []
            for (caller, method, request) in calls {
                let wire = try await outcome(.url("http://127.0.0.1:\(port)"), credential: caller, method, request)
                let inProcess = try await outcome(.inProcess(host.endpoint), credential: caller, method, request)
                #expect(wire == inProcess, "\(method.name) \(request.text)")
                outcomes.append(inProcess)
            }
            #expect(outcomes[0] == "ok 5 -" && outcomes[1] == "ok 5000 -" && outcomes[6] == "ok 7 caller")
            #expect(outcomes[2] == "notFound asked to fail")
            #expect(outcomes[3] == "deadlineExceeded")
            #expect(outcomes[4].hasPrefix("unauthenticated") && outcomes[5].hasPrefix("unauthenticated"))
        }
    }
}
