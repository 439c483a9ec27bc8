import Foundation
import Testing

/// The storage a service's test suite runs against: every such suite runs on each.
public enum StorageBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// A SQLite file in the service's data directory (the default).
    case sqlite
    /// A real PostgreSQL server of the test's own (`PostgresServer`).
    case postgres

    public var testDescription: String { rawValue }
}

/// One service's database for one test: its data directory and, for PostgreSQL, a server with a
/// database named after the service. Tests look inside with plain SQL through the backend's own
/// client (`sqlite3` on the file; PostgreSQL's `psql`), the same statements on both.
public final class TestDatabase: TestFixture {
    public let backend: StorageBackend
    public let service: String
    public let dataDirectory: String
    public let server: PostgresServer?

    /// `directory`: the service's data directory (default: a new temporary one).
    public static func start(_ backend: StorageBackend, service: String, directory: String? = nil) async throws -> TestDatabase {
        let directory = directory ?? NSTemporaryDirectory() + "\(service)-\(UUID().uuidString)"
        guard backend == .postgres else { return TestDatabase(backend: backend, service: service, dataDirectory: directory, server: nil) }
        let server = try await PostgresServer.start()
        do {
            try await server.createDatabase(service)
        } catch {
            await server.stop()
            throw error
        }
        return TestDatabase(backend: backend, service: service, dataDirectory: directory, server: server)
    }

    private init(backend: StorageBackend, service: String, dataDirectory: String, server: PostgresServer?) {
        self.backend = backend
        self.service = service
        self.dataDirectory = dataDirectory
        self.server = server
    }

    /// The service's flags for this database.
    public var serviceArguments: [String] {
        ["--data-dir", dataDirectory] + (server.map { ["--database-url", $0.url(database: service)] } ?? [])
    }

    /// The current time as this backend's schema stores times, for rows a test inserts.
    public var nowExpression: String {
        backend == .sqlite ? "CAST(strftime('%s', 'now') AS REAL)" : "now()"
    }

    /// Runs SQL (no parameters: tests build it from ids they made) through the backend's own
    /// command-line client (`sqlite3`, `psql`); returns what it printed: one row a line, columns
    /// separated by `|`, trimmed.
    @discardableResult
    public func query(_ sql: String) async throws -> String {
        let command: [String]
        if let server {
            command = [
                "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres",
                "-d", service, "-c", sql
            ]
        } else {
            command = ["sqlite3", "-bail", "-cmd", ".timeout 5000", dataDirectory + "/\(service).sqlite", sql]
        }
        let result = try await ExternalCommand.run(command, timeout: .seconds(30))
        guard result.status == 0 else { throw ProcessFailure("\(command[0]) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The first row's text; nil when there is none.
    public func value(_ sql: String) async throws -> String? {
        let output = try await query(sql)
        return output.isEmpty ? nil : output.split(separator: "\n").first.map(String.init)
    }

    /// Runs statements.
    public func execute(_ sql: String) async throws {
        try await query(sql)
    }

    /// `SELECT count(*) ...` as a number.
    public func count(_ sql: String) async throws -> Int {
        guard let text = try await value(sql), let number = Int(text) else { throw ProcessFailure("not a count: \(sql)") }
        return number
    }

    /// Row counts of `tables` (to show a refused call wrote nothing).
    public func rowCounts(_ tables: [String]) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for table in tables { counts[table] = try await count("SELECT count(*) FROM \(table)") }
        return counts
    }

    public func stop() async {
        await server?.stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}
