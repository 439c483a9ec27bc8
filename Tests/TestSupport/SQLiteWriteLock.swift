import Foundation

/// A `sqlite3` process holding the write lock on a SQLite database (BEGIN IMMEDIATE) until
/// `release()`: the service owning the file still reads, but its writes wait out their busy
/// timeout and fail. How tests make a peer fail mid-call without stopping it.
public final class SQLiteWriteLock: @unchecked Sendable {
    private let process = Process()
    private let input: Pipe
    private let output: Pipe

    public init(_ database: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", database]
        (input, output) = try ProcessLaunch.exclusively { [process] in
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            return (input, output)
        }
        input.fileHandleForWriting.write(Data("BEGIN IMMEDIATE;\nSELECT 'locked';\n".utf8))
        // Wait for the lock to be held before going on.
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("locked") {
            let more = output.fileHandleForReading.availableData
            // Empty: sqlite3 ended (its output closed) without taking the lock.
            guard !more.isEmpty else { throw ProcessFailure("sqlite3 did not lock \(database): \(String(decoding: seen, as: UTF8.self))") }
            seen += more
        }
    }

    public func release() {
        input.fileHandleForWriting.write(Data("COMMIT;\n.quit\n".utf8))
        process.waitUntilExit()
    }
}
