import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// The three executables as real processes. Start-up time is one of the figures measured here, so
/// `Tools/dev/test-all.sh` runs this suite in a pass of its own, one test at a time.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ExecutableTests {
    static let services = ["identity", "organization", "marketplace-link"]

    private func dataDirectory() -> String { NSTemporaryDirectory() + "e2e-\(UUID().uuidString)" }

    /// marketplace-link needs seller credentials for the AWS Marketplace APIs; the others ignore them.
    static let awsCredentials = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example-secret"]

    @Test(arguments: services)
    func startsQuicklyAndAnswersHealthProbesAndMetrics(service: String) async throws {
        let launched = ContinuousClock.now
        try await withStarted(
            ChildProcess(
                service: service, arguments: ["--port", "0", "--data-dir", dataDirectory()],
                environment: Self.awsCredentials)
        ) { process in
            let url = "http://127.0.0.1:\(process.port)"
            let health = try await Curl.post(url + "/grpc.health.v1.Health/Check", body: "{}", extra: ["--http2-prior-knowledge"])
            let ready = ContinuousClock.now - launched
            #expect(health.status == 200 && health.body == #"{"status":"SERVING"}"#)
            #expect(ready < .seconds(1), "\(service) took \(ready) to serve")
            #expect(try await Curl.get(url + "/healthz").status == 200)
            #expect(try await Curl.get(url + "/readyz").status == 200)
            #expect(try await Curl.get(url + "/metrics").body.contains("rpc_server_calls_total"))
        }
    }

    /// `<executable> healthcheck` (what a container's health check runs, having no curl) asks the
    /// service configured by the same environment for /readyz: 0 while it serves, 1 once it is gone.
    @Test(arguments: services)
    func healthcheckSubcommandAsksItsOwnReadyz(service: String) async throws {
        let binary = ChildProcess.productsDirectory.appendingPathComponent(service).path
        let port = try await freePort()
        let environment = Self.awsCredentials.merging(["PORT": String(port), "DATA_DIR": dataDirectory()]) { $1 }
        try await withStarted(ChildProcess(service: service, arguments: [], environment: environment)) { process in
            #expect(process.port == port)
            let ready = try await ExternalCommand.run([binary, "healthcheck"], timeout: .seconds(20), environment: environment)
            #expect(ready.status == 0, "\(ready.stderr)")
        }
        let gone = try await ExternalCommand.run([binary, "healthcheck"], timeout: .seconds(20), environment: environment)
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("not ready: GET /readyz on port \(port) got no answer"))
    }

    @Test func configurationComesFromEnvironmentVariables() async throws {
        let directory = dataDirectory()
        try await withStarted(
            ChildProcess(
                service: "organization", arguments: [],
                environment: ["PORT": "0", "DATA_DIR": directory, "LOG_LEVEL": "debug"])
        ) { process in
            #expect(FileManager.default.fileExists(atPath: directory + "/organization.sqlite"))
            #expect(process.output.contains("debug") || process.output.contains("listening"))
        }
    }

    @Test func badFlagsExitWithAMessage() async throws {
        let binary = ChildProcess.productsDirectory.appendingPathComponent("identity").path
        let result = try await ExternalCommand.run([binary, "--port", "99999"], timeout: .seconds(20))
        #expect(result.status != 0)
        #expect(result.stderr.contains("out of range"))
    }

    /// The 40 MiB idle target is a release figure (about 35 MiB for identity, measured by hand).
    /// Tests run the debug build, whose code pages alone are larger, so this checks the memory the
    /// process allocates itself (anonymous RSS) tightly, and the debug total loosely.
    @Test func idleProcessStaysSmall() async throws {
        try await withStarted(ChildProcess(service: "identity", arguments: ["--port", "0", "--data-dir", dataDirectory()])) { process in
            _ = try await Curl.post("http://127.0.0.1:\(process.port)/grpc.health.v1.Health/Check", body: "{}", extra: ["--http2-prior-knowledge"])
            try await Task.sleep(for: .milliseconds(300))
            let status = try String(contentsOfFile: "/proc/\(process.process.processIdentifier)/status", encoding: .utf8)
            func kilobytes(_ field: String) -> Int {
                let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
                return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? .max
            }
            #expect(kilobytes("RssAnon") < 16 * 1024, "anonymous RSS is \(kilobytes("RssAnon")) KiB")
            #expect(kilobytes("VmRSS") < 48 * 1024, "idle RSS of the debug build is \(kilobytes("VmRSS")) KiB")
        }
    }

    @Test func sigtermUnderLoadCompletesOrRefusesEveryCallAndExitsWithinTenSeconds() async throws {
        try await withStarted(ChildProcess(service: "identity", arguments: ["--port", "0", "--data-dir", dataDirectory()])) { process in
            let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(process.port)"))
            let succeeded = SharedCounter()
            let load = (0..<32).map { _ in
                Task { () -> (ok: Int, unexpected: [RPCError]) in
                    var ok = 0
                    var unexpected: [RPCError] = []
                    while !Task.isCancelled {
                        do throws(RPCError) {
                            _ = try await client.call(Health.check, HealthCheckRequest(), options: .init(timeout: .seconds(5)))
                            ok += 1
                            succeeded.increment()
                        } catch {
                            if error.code != .unavailable { unexpected.append(error) }
                            break
                        }
                    }
                    return (ok, unexpected)
                }
            }
            // Signal only once traffic is flowing.
            try await eventually(timeout: .seconds(10)) { succeeded.value >= 200 }
            let signalled = ContinuousClock.now
            process.signal(SIGTERM)
            let status = await process.waitForExit(timeout: .seconds(10))
            let took = ContinuousClock.now - signalled
            #expect(status == 0, "exit status \(String(describing: status)), log:\n\(process.output)")
            #expect(took < .seconds(10))
            var total = 0
            for task in load {
                task.cancel()
                let (ok, unexpected) = await task.value
                total += ok
                #expect(unexpected.isEmpty, "\(unexpected.prefix(3))")
            }
            #expect(total > 100, "only \(total) calls made it before SIGTERM")
            #expect(process.output.contains("draining"))
            await client.close()
        }
    }
}
