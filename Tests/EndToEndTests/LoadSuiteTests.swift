import Foundation
import TestSupport
import Testing

/// The load and fault suite's short run (`Tools/load/run.py`): a minute of buyer journeys (3
/// started a second, with wrong passwords, double submissions, double clicks on bind and
/// non-admins among them) through every executable while the fault injector kills services
/// with SIGKILL, restarts the simulator, stops organization and turns on AWS throttling; then,
/// with everything up again, the invariant checker reads the databases, the maildrop and the
/// simulator. On SQLite with one process per service, and on PostgreSQL with two replicas of
/// each. Release builds when `Tools/dev/test-all.sh` has built them, else the debug builds.
@Suite(.serialized, .timeLimit(.minutes(10))) struct LoadSuiteTests {
    /// The directory with all five executables as release builds, else the debug builds'.
    static var binaries: String {
        let release = ChildProcess.releaseDirectory
        let all = ["identity", "organization", "marketplace-link", "console", "aws-marketplace-sim"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: release.appendingPathComponent($0).path)
        }
        return (all ? release : ChildProcess.productsDirectory).path
    }

    struct Report: Decodable {
        struct Journeys: Decodable {
            var started: Int
            var completed: Int
            var failed: Int
        }
        struct Invariant: Decodable {
            var invariant: String
            var held: Bool
            var detail: String
        }
        struct Fault: Decodable {
            var kind: String
        }
        var journeys: Journeys
        var faults: [Fault]
        var invariants: [Invariant]
        var refusals: [String: [String: Int]]
    }

    @Test(arguments: StorageBackend.allCases)
    func aMinuteOfJourneysWithFaultsKeepsEveryInvariant(backend: StorageBackend) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tools/load/run.py").path
        let reportPath = NSTemporaryDirectory() + "load-report-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: reportPath) }
        let result = try await ExternalCommand.run(
            [
                "python3", "-u", script, "--bin", Self.binaries, "--backend", backend.rawValue, "--replicas", backend == .postgres ? "2" : "1",
                "--seconds", "60", "--rate", "3", "--report", reportPath
            ], timeout: .seconds(420))
        // The report in the test log: throughput, latency per step, errors by code, the faults.
        print(result.stdout)
        #expect(result.status == 0 && !result.timedOut, "the load suite failed on \(backend):\n\(result.stdout)\n\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: reportPath)))
        for invariant in report.invariants {
            #expect(invariant.held, "\(backend): \(invariant.invariant): \(invariant.detail)")
        }
        #expect(report.invariants.count >= 11)
        #expect(report.journeys.started >= 150 && report.journeys.completed == report.journeys.started, "\(report.journeys)")
        // Every kind of fault happened during the minute, and the population made its mistakes.
        let kinds = Set(report.faults.map(\.kind))
        #expect(kinds == ["kill", "restart_simulator", "stop_organization", "throttle"], "faults: \(report.faults)")
        #expect(Set(report.refusals.keys).isSuperset(of: ["wrong_password", "double_click_bind", "non_admin_bind", "non_admin_billing"]))
    }
}
