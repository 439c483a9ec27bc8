import Foundation

/// The outcome of running a program to completion.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool
}

/// Runs third-party programs (curl, nghttp, h2load, python3) with a time limit.
public enum ExternalCommand {
    /// Runs `arguments[0]` found on PATH; kills it after `timeout`.
    ///
    /// Its input and output are files, read once it has exited: nothing waits for a pipe's end.
    public static func run(
        _ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(60),
        environment: [String: String] = [:]
    ) async throws -> CommandResult {
        let files = NSTemporaryDirectory() + "command-\(UUID().uuidString)"
        let inputPath = files + ".in", outputPath = files + ".out", errorPath = files + ".err"
        defer { for path in [inputPath, outputPath, errorPath] { try? FileManager.default.removeItem(atPath: path) } }
        for (path, contents) in [(inputPath, stdin ?? Data()), (outputPath, Data()), (errorPath, Data())] {
            guard FileManager.default.createFile(atPath: path, contents: contents) else { throw ProcessFailure("cannot create \(path)") }
        }
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let error = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        defer { for handle in [input, output, error] { try? handle.close() } }
        try ProcessLaunch.exclusively { try process.run() }
        let timedOut = await !process.exits(within: timeout)
        if timedOut {
            process.terminate()
            // SIGKILL if SIGTERM is not enough within 5 s.
            if await !process.exits(within: .seconds(5)) { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let stdout = String(decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: FileManager.default.contents(atPath: errorPath) ?? Data(), as: UTF8.self)
        return CommandResult(status: process.terminationStatus, stdout: stdout, stderr: stderr, timedOut: timedOut)
    }

    /// True when `name` is on PATH.
    public static func exists(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }
}
