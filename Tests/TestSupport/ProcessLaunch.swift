import Foundation

/// Starts child processes one at a time in this test process. Foundation's `Process` on Linux
/// closes, in a child, only the descriptors open when it listed them, and makes its pipes and the
/// socket by which it learns that a child exited without close-on-exec: a child another thread
/// spawns at that moment can inherit them. A long-lived child (a service a test keeps running)
/// then holds a command's output pipe, or that socket, open, and whoever waits for the command
/// waits for the service to exit: CI's RollingRestartTests hung that way
/// (TestHarnessTests.commandsEndWhileLongLivedProcessesStart).
public enum ProcessLaunch {
    private static let lock = NSLock()

    /// Runs `body` (which makes a process's pipes and calls its `run()`) while no other launch is under way.
    public static func exclusively<Result>(_ body: () throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

extension Process {
    /// Waits, without blocking a thread, for the process to exit, up to `timeout`: whether it did.
    public func exits(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
