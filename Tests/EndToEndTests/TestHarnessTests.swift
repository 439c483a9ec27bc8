import Foundation
import Synchronization
import TestSupport
import Testing

/// The test harness itself: what the process tests rely on to end.
@Suite struct TestHarnessTests {
    /// What the tasks of the test below share.
    final class Progress: Sendable {
        let sleepers = Mutex<[ChildProcess]>([])
        let finished = Atomic<Bool>(false)
    }

    /// Short commands run while long-lived processes start on another task, as a journey's curl
    /// calls do while a test restarts a service. Each command must end with its process: none may
    /// wait for a long-lived process to exit (CI's RollingRestartTests hung that way, a restarted
    /// replica holding curl's output pipe open). If they do not all end in time, the long-lived
    /// processes are killed, which lets the stuck commands end, and the test fails.
    @Test func commandsEndWhileLongLivedProcessesStart() async throws {
        let progress = Progress()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<40 {
                    let sleeper = try await ChildProcess(
                        name: "sleep", executable: URL(fileURLWithPath: "/bin/sleep"), arguments: ["120"], environment: [:],
                        readyWithin: .seconds(5)
                    ) { _ in 0 }
                    progress.sleepers.withLock { $0.append(sleeper) }
                }
            }
            group.addTask {
                for _ in 0..<4 {
                    try await withThrowingTaskGroup(of: CommandResult.self) { commands in
                        for _ in 0..<20 { commands.addTask { try await ExternalCommand.run(["echo", "done"], timeout: .seconds(10)) } }
                        for try await result in commands { #expect(result.status == 0 && result.stdout == "done\n") }
                    }
                }
                progress.finished.store(true, ordering: .relaxed)
            }
            group.addTask {
                // The watchdog: stuck commands end once the long-lived processes are gone.
                while !progress.finished.load(ordering: .relaxed) && ContinuousClock.now - started < .seconds(60) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                if !progress.finished.load(ordering: .relaxed) {
                    Issue.record("commands were still waiting after 60 s, for the long-lived processes to exit")
                    for sleeper in progress.sleepers.withLock({ $0 }) { await sleeper.stop() }
                }
            }
            try await group.waitForAll()
        }
        for sleeper in progress.sleepers.withLock({ $0 }) { await sleeper.stop() }
    }
}
