import Foundation

/// A real PostgreSQL server (Debian's `postgresql`) for one test: its own cluster in a temporary
/// directory, started as the unprivileged `postgres` user (when the tests run as root) on a free
/// loopback port, with trust authentication for `postgres` over TCP from 127.0.0.1 only; stopped
/// and removed by `stop`.
public final class PostgresServer: TestFixture {
    public let port: Int
    public let directory: String
    private let binaries: String

    /// `postgres://postgres@127.0.0.1:<port>/<database>?sslmode=disable`
    public func url(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    public static func start() async throws -> PostgresServer {
        guard let binaries = Self.binaryDirectory() else {
            throw ProcessFailure("PostgreSQL is not installed (Tools/dev/install-packages.sh test installs it)")
        }
        let directory = NSTemporaryDirectory() + "postgres-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 {
            _ = try await ExternalCommand.run(["chown", "-R", "postgres:postgres", directory], timeout: .seconds(10))
        }
        try await run(
            binaries, ["initdb", "-D", directory + "/data", "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
            output: directory + "/initdb.out", timeout: .seconds(60))
        // The server runs in the foreground as our child (no pg_ctl: its daemonised server would
        // inherit what a reader of ours waits on); `setpriv` switches user without forking, so the
        // child is postgres itself and our signals reach it.
        var failure = ""
        for _ in 1...5 {  // a port taken in the meantime: another one
            let port = try await freePort()
            do {
                let process = try await ChildProcess(
                    name: "postgres", executable: URL(fileURLWithPath: "/usr/bin/env"),
                    arguments: Self.asPostgresUser([
                        binaries + "/postgres", "-D", directory + "/data", "-p", String(port), "-c", "listen_addresses=127.0.0.1",
                        "-k", directory, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                        "-c", "max_connections=300"
                    ]), environment: [:], readyWithin: .seconds(60)
                ) { log in log.contains("ready to accept connections") ? port : nil }
                return PostgresServer(port: port, directory: directory, binaries: binaries, process: process)
            } catch {
                failure = "\(error)"
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw ProcessFailure("postgres did not start: \(failure)")
    }

    private let process: ChildProcess

    private init(port: Int, directory: String, binaries: String, process: ChildProcess) {
        self.port = port
        self.directory = directory
        self.binaries = binaries
        self.process = process
    }

    /// Makes a database (a service keeps its own).
    public func createDatabase(_ name: String) async throws {
        try await Self.run(
            binaries, ["createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name], output: directory + "/createdb.out",
            timeout: .seconds(30))
    }

    /// A fast shutdown (SIGINT: connections ended, then the server exits), killed if it lingers.
    public func stop() async {
        process.signal(SIGINT)
        if await process.waitForExit(timeout: .seconds(20)) == nil { await process.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The server's log, for failure messages.
    public var log: String { process.output }

    /// PostgreSQL refuses to run as root: when the tests do, its programs run as the `postgres` user.
    private static func asPostgresUser(_ arguments: [String]) -> [String] {
        getuid() == 0 ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + arguments : arguments
    }

    /// Runs a PostgreSQL program to its end, its output in a file (shown if it fails).
    private static func run(_ binaries: String, _ command: [String], output: String, timeout: Duration) async throws {
        let arguments = asPostgresUser([binaries + "/" + command[0]] + command.dropFirst())
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = process.standardOutput
        try ProcessLaunch.exclusively { try process.run() }
        guard await process.exits(within: timeout) else {
            process.terminate()
            throw ProcessFailure("\(command[0]) did not finish within \(timeout)")
        }
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw ProcessFailure("\(command[0]) failed (\(process.terminationStatus)): \(text)")
        }
    }

    private static func binaryDirectory() -> String? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.compactMap(Int.init).sorted().last.map { "/usr/lib/postgresql/\($0)/bin" }
    }
}
