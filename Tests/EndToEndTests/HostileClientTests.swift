import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// Clients we did not write (raw sockets and Python's `h2`, `Tests/Fixtures/hostile_clients.py`)
/// try to grow one organization process without bound: pipelined HTTP/1.1 requests never read,
/// an HTTP/2 request flood never read, HTTP/2 bodies that never end. The process is the release
/// build when `Tools/dev/test-all.sh` has built it (the debug build otherwise). Its RSS must grow
/// by under 64 MiB for one such client and 128 MiB for three, while Health/Check on another
/// connection keeps answering within 50 ms.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HostileClientTests {
    static let probeSeconds = 8

    /// The release build of `name` if there is one, else the debug build.
    static func executable(_ name: String) -> URL {
        let release = ChildProcess.releaseDirectory.appendingPathComponent(name)
        return FileManager.default.isExecutableFile(atPath: release.path) ? release : ChildProcess.productsDirectory.appendingPathComponent(name)
    }

    static func startOrganization(_ extra: [String] = []) async throws -> ChildProcess {
        try await ChildProcess(
            name: "organization", executable: executable("organization"),
            arguments: ["--port", "0", "--data-dir", NSTemporaryDirectory() + "hostile-\(UUID().uuidString)"] + extra,
            environment: [:], readyWithin: .seconds(20), port: ChildProcess.listeningPort)
    }

    static func rssKiB(_ process: ChildProcess) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    struct Probe {
        var baselineKiB: Int
        var peakKiB: Int
        var slowestHealthCheck: Duration
        var failedHealthChecks: Int
        var clientResults: [String]
        var growthMiB: Double { Double(peakKiB - baselineKiB) / 1024 }
    }

    /// Runs `modes` at once against `server` while sampling its RSS and timing Health/Check.
    static func probe(_ server: ChildProcess, modes: [String]) async throws -> Probe {
        return try await withStarted(ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(server.port)"))) { client in
            _ = try await client.call(Health.check, HealthCheckRequest())  // connected before the clients start
            let baseline = rssKiB(server)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/hostile_clients.py").path
            var peak = baseline
            var slowest = Duration.zero
            var failed = 0
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for mode in modes {
                    group.addTask {
                        let result = try await ExternalCommand.run(
                            ["python3", script, mode, "127.0.0.1", String(server.port), String(probeSeconds)],
                            timeout: .seconds(probeSeconds + 30))
                        return result.stdout + result.stderr
                    }
                }
                let end = ContinuousClock.now + .seconds(probeSeconds)
                try await Task.sleep(for: .milliseconds(300))  // let the clients get going
                while ContinuousClock.now < end {
                    let started = ContinuousClock.now
                    do {
                        _ = try await client.call(Health.check, HealthCheckRequest(), options: .init(timeout: .seconds(2)))
                    } catch {
                        failed += 1
                    }
                    slowest = max(slowest, ContinuousClock.now - started)
                    peak = max(peak, rssKiB(server))
                    try await Task.sleep(for: .milliseconds(100))
                }
                var outputs: [String] = []
                for try await output in group { outputs.append(output) }
                peak = max(peak, rssKiB(server))
                return outputs
            }
            return Probe(baselineKiB: baseline, peakKiB: peak, slowestHealthCheck: slowest, failedHealthChecks: failed, clientResults: results)
        }
    }

    @Test(arguments: ["http1-pipeline", "h2-flood", "h2-bodies"])
    func oneHostileClientCannotGrowTheProcess(mode: String) async throws {
        try await withStarted(Self.startOrganization()) { server in
            let probe = try await Self.probe(server, modes: [mode])
            print(
                "hostile \(mode): RSS \(probe.baselineKiB) KiB -> peak \(probe.peakKiB) KiB (+\(String(format: "%.1f", probe.growthMiB)) MiB), "
                    + "slowest Health/Check \(probe.slowestHealthCheck), \(probe.clientResults.joined())")
            #expect(probe.growthMiB < 64, "\(mode) grew RSS by \(probe.growthMiB) MiB")
            #expect(probe.failedHealthChecks == 0)
            #expect(probe.slowestHealthCheck < .milliseconds(50), "\(mode): slowest Health/Check \(probe.slowestHealthCheck)")
            #expect(probe.clientResults.allSatisfy { $0.contains(#""mode""#) }, "\(probe.clientResults)")
        }
    }

    @Test func threeHostileClientsCannotGrowTheProcess() async throws {
        try await withStarted(Self.startOrganization()) { server in
            let probe = try await Self.probe(server, modes: ["h2-bodies", "h2-bodies", "h2-flood"])
            print(
                "hostile x3: RSS \(probe.baselineKiB) KiB -> peak \(probe.peakKiB) KiB (+\(String(format: "%.1f", probe.growthMiB)) MiB), "
                    + "slowest Health/Check \(probe.slowestHealthCheck)")
            #expect(probe.growthMiB < 128, "three clients grew RSS by \(probe.growthMiB) MiB")
            #expect(probe.failedHealthChecks == 0)
            #expect(probe.slowestHealthCheck < .milliseconds(50), "slowest Health/Check \(probe.slowestHealthCheck)")
        }
    }

    /// With a low open-file limit the process keeps connections below it (and says the figure),
    /// and one client address cannot take every slot: another one is still served.
    @Test func connectionsStayBelowTheOpenFileLimitAndPerClient() async throws {
        try await withStarted(
            ChildProcess(
                name: "organization", executable: URL(fileURLWithPath: "/usr/bin/prlimit"),
                arguments: [
                    "--nofile=512:512", Self.executable("organization").path, "--port", "0",
                    "--data-dir", NSTemporaryDirectory() + "fd-\(UUID().uuidString)", "--max-connections-per-client", "100"
                ],
                environment: [:], readyWithin: .seconds(20), port: ChildProcess.listeningPort)
        ) { server in
            #expect(server.output.contains("max_connections=384"), "\(server.output)")
            #expect(server.output.contains("open_file_limit=512"))
            // 150 connections from 127.0.0.2: 100 are kept, the rest closed at once.
            let script = """
                import socket, time
                kept = []
                for _ in range(150):
                    s = socket.socket(); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", \(server.port))); kept.append(s)
                time.sleep(1)
                alive = 0
                for s in kept:
                    s.setblocking(False)
                    try:
                        alive += 0 if s.recv(1) == b"" else 1
                    except BlockingIOError:
                        alive += 1
                    except OSError:
                        pass
                print(alive)
                """
            let result = try await ExternalCommand.run(["python3", "-c", script], timeout: .seconds(30))
            #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "100", "\(result.stdout) \(result.stderr)")
            let health = try await Curl.get("http://127.0.0.1:\(server.port)/healthz")
            #expect(health.status == 200)
            let refusals = server.output.components(separatedBy: "a client address is at its connection limit").count - 1
            #expect(refusals == 1, "one line for the flood, not one per connection: \(refusals)")
        }
    }
}
