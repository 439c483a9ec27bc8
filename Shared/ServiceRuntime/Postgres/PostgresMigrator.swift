import Foundation
import Logging
import PostgresNIO
import RPCCore

/// One step of a service's PostgreSQL schema: statements run in order, in the migration's transaction.
public struct PostgresMigration: Sendable {
    public let id: String
    public let statements: [String]

    public init(_ id: String, _ statements: [String]) {
        self.id = id
        self.statements = statements
    }
}

/// Brings a service's PostgreSQL database (or schema) to the migrations this build knows, at
/// start. Replicas starting at once migrate once: the whole check-and-apply runs in one
/// transaction holding an advisory lock, so a second replica waits, then finds nothing to do.
/// A database that belongs to another service, or was migrated by a newer build, is refused.
public enum PostgresMigrator {
    /// The advisory lock every migrating replica takes (one key for all services: each has its own database).
    static let lockKey: Int64 = 0x6d6b_7470_6c63_6521

    /// Applies what is missing; returns the ids applied now.
    @discardableResult
    public static func migrate(
        _ client: PostgresClient, service: String, migrations: [PostgresMigration], logger: Logger
    ) async throws -> [String] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_owner (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), service text NOT NULL)
                """, logger: logger)
            try await connection.query("INSERT INTO schema_owner (service) VALUES (\(service)) ON CONFLICT DO NOTHING", logger: logger)
            var owner = ""
            for try await (name) in try await connection.query("SELECT service FROM schema_owner", logger: logger).decode(String.self) {
                owner = name
            }
            guard owner == service else {
                throw ConfigurationError(
                    "this database belongs to \(owner), not \(service): give each service a database (or schema) and role of its own")
            }
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var applied: Set<String> = []
            for try await (id) in try await connection.query("SELECT id FROM schema_migrations", logger: logger).decode(String.self) {
                applied.insert(id)
            }
            let unknown = applied.subtracting(migrations.map(\.id)).sorted()
            guard unknown.isEmpty else {
                throw ConfigurationError(
                    "the database has migrations this \(service) does not know (\(unknown.joined(separator: ", "))): a newer version migrated it; run that version"
                )
            }
            var appliedNow: [String] = []
            for migration in migrations where !applied.contains(migration.id) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (id) VALUES (\(migration.id))", logger: logger)
                appliedNow.append(migration.id)
            }
            if !appliedNow.isEmpty { logger.info("migrated", metadata: ["service": "\(service)", "applied": "\(appliedNow)"]) }
            return appliedNow
        }
    }
}
