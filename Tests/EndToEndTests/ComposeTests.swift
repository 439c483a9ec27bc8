import Foundation
import TestSupport
import Testing

/// compose/: the Compose file is valid against the Compose Specification, and its default profile,
/// run as written (`Tests/Fixtures/compose_runner.py`: commands, environment, secret files,
/// healthchecks, start order) by this build's executables, carries the buyer's journey in Chromium.
@Suite(.serialized, .timeLimit(.minutes(8))) struct ComposeTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let composeFile = repository.appendingPathComponent("compose/compose.yaml").path
    static let runner = repository.appendingPathComponent("Tests/Fixtures/compose_runner.py").path

    private func validate(_ path: String) async throws -> CommandResult {
        try await ExternalCommand.run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", path], timeout: .seconds(60))
    }

    /// A copy of compose/ with `change` applied to the Compose file.
    private func changedCopy(_ change: (String) -> String) throws -> String {
        let directory = NSTemporaryDirectory() + "compose-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: Self.repository.appendingPathComponent("compose").path, toPath: directory)
        let text = try String(contentsOfFile: directory + "/compose.yaml", encoding: .utf8)
        let changed = change(text)
        #expect(changed != text, "the change applies")
        try changed.write(toFile: directory + "/compose.yaml", atomically: true, encoding: .utf8)
        return directory + "/compose.yaml"
    }

    private func run(_ composeFile: String) async throws -> CommandResult {
        try await ExternalCommand.run(
            [
                "python3", "-u", Self.runner, "--compose", composeFile, "--bin", ChildProcess.productsDirectory.path,
                "--work", NSTemporaryDirectory() + "compose-run-\(UUID().uuidString)"
            ], timeout: .seconds(360))
    }

    @Test func theComposeFileFollowsTheComposeSpecification() async throws {
        let valid = try await validate(Self.composeFile)
        #expect(valid.status == 0, "\(valid.stdout)\(valid.stderr)")
        let broken = try changedCopy {
            $0.replacingOccurrences(of: "    depends_on:\n      identity:", with: "    depends_on:\n      - identity:", options: [], range: nil)
        }
        #expect(try await validate(broken).status != 0, "a depends_on that is neither a list of names nor a map is refused")
    }

    @Test func theDefaultProfileRunsAsWrittenAndCarriesTheJourney() async throws {
        let result = try await run(Self.composeFile)
        #expect(result.status == 0 && !result.timedOut, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("PASSED demo"))
    }

    @Test func aVariableTheExecutableDoesNotReadFailsTheRun() async throws {
        let misspelt = try changedCopy {
            $0.replacingOccurrences(
                of: "      IDENTITY_URL: http://identity:7101\n      SERVICE_SECRET_FILE: /run/secrets/organization_secret",
                with: "      IDENTIY_URL: http://identity:7101\n      SERVICE_SECRET_FILE: /run/secrets/organization_secret")
        }
        let result = try await run(misspelt)
        #expect(result.status == 1)
        #expect(result.stdout.contains("organization: ") && result.stdout.contains("does not know IDENTIY_URL"), "\(result.stdout)")
    }

    @Test func aHealthcheckThatNeverPassesFailsTheRun() async throws {
        // identity listens on 7101 but its healthcheck is told to look at 7109.
        let wrongPort = try changedCopy {
            $0.replacingOccurrences(
                of: "test: [\"CMD\", \"/usr/local/bin/identity\", \"healthcheck\"]",
                with: "test: [\"CMD\", \"/usr/local/bin/identity\", \"healthcheck\", \"--port\", \"7109\"]")
        }
        let result = try await run(wrongPort)
        #expect(result.status == 1)
        #expect(result.stdout.contains("identity never passed its healthcheck"), "\(result.stdout)")
    }
}
