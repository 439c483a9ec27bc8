import Foundation
import Logging
import PostgresNIO
import ServiceRuntime
import TestSupport
import Testing

/// A service's PostgreSQL schema against a real PostgreSQL 15: migrated once however many replicas
/// start at once, refused when it belongs to another service or was migrated by a newer build.
@Suite(.serialized, .timeLimit(.minutes(3))) struct PostgresMigratorTests {
    static let migrations = [
        PostgresMigration("v1 things", ["CREATE TABLE thing (id bigserial PRIMARY KEY, name text NOT NULL)"]),
        // Each application inserts a row, so the count says how often the migration ran.
        PostgresMigration("v2 seed", ["INSERT INTO thing (name) VALUES ('seeded')"])
    ]

    private var logger: Logger {
        var logger = Logger(label: "postgres-test")
        logger.logLevel = .critical
        return logger
    }

    /// Runs `body` with a client of a fresh database on `server`, the client running meanwhile.
    private func withClient<Result: Sendable>(
        _ server: PostgresServer, database: String, _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        guard case .postgres(let configuration, _) = try DatabaseURL(parsing: server.url(database: database)) else {
            throw ProcessFailure("not a PostgreSQL URL")
        }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    private func count(_ client: PostgresClient) async throws -> Int {
        var total = 0
        for try await (value) in try await client.query("SELECT count(*)::int FROM thing").decode(Int.self) { total = value }
        return total
    }

    @Test func replicasStartingAtOnceMigrateOnce() async throws {
        try await withStarted(PostgresServer.start()) { server in
            try await server.createDatabase("organization")
            let logger = self.logger
            let applied = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await withClient(server, database: "organization") { client in
                            try await PostgresMigrator.migrate(client, service: "organization", migrations: Self.migrations, logger: logger)
                        }
                    }
                }
                return try await group.reduce(into: [[String]]()) { $0.append($1) }
            }
            #expect(applied.filter { !$0.isEmpty } == [["v1 things", "v2 seed"]], "exactly one replica applied the migrations: \(applied)")
            try await withClient(server, database: "organization") { client in
                let rows = try await count(client)
                #expect(rows == 1)
                // Starting again applies nothing.
                let again = try await PostgresMigrator.migrate(client, service: "organization", migrations: Self.migrations, logger: logger)
                #expect(again.isEmpty)
            }
        }
    }

    @Test func anotherServicesDatabaseOrANewerSchemaIsRefused() async throws {
        try await withStarted(PostgresServer.start()) { server in
            try await server.createDatabase("identity")
            let logger = self.logger
            try await withClient(server, database: "identity") { client in
                try await PostgresMigrator.migrate(client, service: "identity", migrations: Self.migrations, logger: logger)
                do {
                    try await PostgresMigrator.migrate(client, service: "organization", migrations: Self.migrations, logger: logger)
                    Issue.record("organization migrated identity's database")
                } catch {
                    #expect("\(error)".contains("belongs to identity, not organization"))
                }
                // A build that knows only v1 meets a database a newer build took to v2.
                do {
                    try await PostgresMigrator.migrate(client, service: "identity", migrations: [Self.migrations[0]], logger: logger)
                    Issue.record("an older build accepted a newer schema")
                } catch {
                    #expect("\(error)".contains("does not know (v2 seed)"))
                }
                let rows = try await count(client)
                #expect(rows == 1, "nothing applied twice, nothing half applied")
            }
        }
    }

    @Test func databaseURLs() throws {
        guard case .postgres(_, let redacted) = try DatabaseURL(parsing: "postgres://svc:s3cret@db.internal:6543/identity?sslmode=require")
        else {
            Issue.record("not parsed as PostgreSQL")
            return
        }
        #expect(!redacted.contains("s3cret") && redacted.contains("db.internal:6543/identity"))
        guard case .sqlite = try DatabaseURL(parsing: "sqlite:") else {
            Issue.record("sqlite: is SQLite")
            return
        }
        for bad in ["mysql://x@y/z", "postgres://db/identity", "postgres://u@db/", "postgres://u@db/x?sslmode=sometimes"] {
            #expect(throws: (any Error).self, "\(bad)") { try DatabaseURL(parsing: bad) }
        }
    }
}
