import Foundation
import TestSupport
import Testing

/// The buyer's journey through the console in a real browser (Debian's headless Chromium,
/// driven by Selenium: `Tests/Fixtures/browser_journey.py`), against every executable as a
/// process. Each scenario is one run of the script; its output says what failed and where.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ConsoleBrowserTests {
    static let scenarios = ["new-buyer", "member-and-admin", "signed-in", "refusals", "no-javascript", "form-security", "usage"]

    @Test func theJourneyInChromium() async throws {
        try await withStarted(ConsoleSystem.start()) { system in
            let screenshots = ProcessInfo.processInfo.environment["CONSOLE_SCREENSHOTS"]
            for scenario in Self.scenarios {
                let result = try await BrowserJourney.run(scenario, in: system, screenshots: screenshots)
                #expect(result.status == 0 && !result.timedOut, "scenario \(scenario): \(result.stdout)\n\(result.stderr)")
            }
            // Nothing secret in the console's log: no session, claim, token or password.
            let log = system.console.output
            #expect(!log.contains("correct horse battery staple") && !log.contains("token="), "the console logged a secret:\n\(log)")
        }
    }
}

/// `Tests/Fixtures/browser_journey.py` running one scenario against a system.
enum BrowserJourney {
    static func run(_ scenario: String, in system: ConsoleSystem, screenshots: String? = nil) async throws -> CommandResult {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/browser_journey.py").path
        return try await ExternalCommand.run(
            [
                "python3", "-u", script, scenario,
                "--console", system.consoleURL, "--simulator", system.simulator.baseURL, "--maildrop", system.maildrop,
                "--offer-email", "buyer-111111111111@example.com",
                "--marketplace-link", "http://127.0.0.1:\(system.marketplaceLink.port)", "--usage-reporter-secret", system.usageReporterSecret
            ] + (screenshots.map { ["--screenshots", $0] } ?? []),
            timeout: .seconds(120))
    }
}
