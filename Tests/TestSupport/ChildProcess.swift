import Foundation
import NIOPosix
import Synchronization

/// A program running as a real child process (one of our executables, or a third-party server),
/// for tests where signals, crashes or a second process matter. Its output goes to a log file,
/// read to find the port it bound.
public final class ChildProcess: @unchecked Sendable {
    public let name: String
    public let process: Process
    public let logPath: String
    public private(set) var port: Int = 0

    /// The directory holding the built executables (next to the test bundle).
    /// Where `swift build -c release` (and compose/build-release.sh) puts the executables, beside the debug ones.
    public static var releaseDirectory: URL {
        productsDirectory.deletingLastPathComponent().appendingPathComponent("release")
    }

    public static var productsDirectory: URL {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("identity").path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }

    /// Starts one of this package's executables with `arguments` (use `--port 0`) and waits until
    /// it logs that it listens.
    public convenience init(
        service name: String, arguments: [String], environment: [String: String] = [:],
        readyWithin: Duration = .seconds(20)
    ) async throws {
        try await self.init(
            name: name, executable: Self.productsDirectory.appendingPathComponent(name), arguments: arguments,
            environment: environment, readyWithin: readyWithin, port: Self.listeningPort)
    }

    /// Starts a Python script from `Tests/Fixtures` that prints `PORT <n>` once it listens.
    public convenience init(pythonFixture script: String, arguments: [String]) async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(script)").path
        try await self.init(
            name: script, executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-u", path] + arguments, environment: [:], readyWithin: .seconds(20)
        ) { log in
            log.split(separator: "\n").first { $0.hasPrefix("PORT ") }.flatMap { Int($0.dropFirst(5)) }
        }
    }

    /// Starts `executable` and waits until `port(log)` finds the port it listens on.
    public init(
        name: String, executable: URL, arguments: [String], environment: [String: String],
        readyWithin: Duration, port findPort: (String) -> Int?
    ) async throws {
        self.name = name
        logPath = NSTemporaryDirectory() + "\(name)-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        try ProcessLaunch.exclusively { try process.run() }
        LiveChildren.shared.add(process.processIdentifier)
        let deadline = ContinuousClock.now + readyWithin
        while ContinuousClock.now < deadline {
            if let port = findPort((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "") {
                self.port = port
                return
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.terminate()
        throw ProcessFailure("\(name) did not start listening; log:\n\(output)")
    }

    /// Everything the process has logged so far.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a signal (SIGTERM, SIGKILL, ...).
    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit, up to `timeout`; returns its status, or nil if it is still running.
    public func waitForExit(timeout: Duration) async -> Int32? {
        guard await process.exits(within: timeout) else { return nil }
        LiveChildren.shared.remove(process.processIdentifier)
        return process.terminationStatus
    }

    /// Kills the process if it still runs (test clean-up).
    public func stop() async {
        if process.isRunning { signal(SIGKILL) }
        _ = await waitForExit(timeout: .seconds(5))
    }

    /// Finds `port=NNNN` in a "listening" log line.
    public static func listeningPort(_ log: String) -> Int? {
        for line in log.split(separator: "\n") where line.contains("listening") {
            if let range = line.range(of: "port=") {
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }
        }
        return nil
    }
}

/// Every child process started by a test, killed when the test runner exits, so that a test that
/// ends (or fails) before its clean-up ran leaves nothing running.
final class LiveChildren: Sendable {
    static let shared = LiveChildren()
    private let pids = Mutex<Set<Int32>>([])

    private init() {
        atexit {
            for pid in LiveChildren.shared.pids.withLock({ $0 }) { kill(pid, SIGKILL) }
        }
    }

    func add(_ pid: Int32) { pids.withLock { _ = $0.insert(pid) } }
    /// Once a child has exited and been reaped, its pid may be reused: forget it.
    func remove(_ pid: Int32) { pids.withLock { _ = $0.remove(pid) } }
}

/// A test helper could not do what it was asked.
public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A port that was free a moment ago, for servers that must be told their port before they
/// start. Chosen at random below the kernel's ephemeral range (32768 and up on Linux), where
/// neither `bind(0)` nor outgoing connections take ports, so another test cannot be handed the
/// same one in the meantime.
public func freePort() async throws -> Int {
    for _ in 0..<50 {
        let candidate = Int.random(in: 20_000..<32_000)
        guard
            let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: candidate).get()
        else { continue }
        try await channel.close()
        return candidate
    }
    throw ProcessFailure("no free port found between 20000 and 32000")
}
