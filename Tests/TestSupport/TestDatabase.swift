import Foundation
import GRDB
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
/// client (GRDB on the file; PostgreSQL's `psql`), the same statements on both.
public final class TestDatabase: TestFixture {
    public let backend: StorageBackend
    public let service: String
    public let dataDirectory: String
    public let server: PostgresServer?

    public static func start(_ backend: StorageBackend, service: String) async throws -> TestDatabase {
        let directory = NSTemporaryDirectory() + "\(service)-\(UUID().uuidString)"
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

    /// Runs statements (no parameters: tests build them from ids they made).
    public func execute(_ sql: String) async throws {
        if let server {
            _ = try await psql(server, sql)
        } else {
            let queue = try DatabaseQueue(path: dataDirectory + "/\(service).sqlite")
            try await queue.write { db in try db.execute(sql: sql) }
        }
    }

    /// The first column of the first row, as text (nil when there is no row or it is NULL).
    public func value(_ sql: String) async throws -> String? {
        if let server {
            let output = try await psql(server, sql)
            return output.isEmpty ? nil : output
        }
        let queue = try DatabaseQueue(path: dataDirectory + "/\(service).sqlite")
        return try await queue.read { db in try String.fetchOne(db, sql: sql) }
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

    private func psql(_ server: PostgresServer, _ sql: String) async throws -> String {
        let result = try await ExternalCommand.run(
            [
                "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres", "-d",
                service,
                "-c", sql
            ],
            timeout: .seconds(30))
        guard result.status == 0 else { throw ProcessFailure("psql failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
