import Foundation
import GRDB
import Logging
import RPCCore

/// Where a service keeps its data (`--database-url`): a SQLite file of its own in its data
/// directory (the default, for one process), or a PostgreSQL database its replicas share.
public enum ServiceDatabase: Sendable {
    case sqlite(DatabasePool)
    case postgres(PostgresBackend)

    /// The SQLite pool, for storage that has no PostgreSQL backend (the host refuses a
    /// postgres:// URL for such a service before this is asked).
    public var pool: DatabasePool {
        get throws {
            guard case .sqlite(let pool) = self else { throw ConfigurationError("this storage keeps its data in SQLite only") }
            return pool
        }
    }

    /// Opens (creating if needed) `<directory>/<name>.sqlite` and applies every pending migration.
    /// The directory is made 0700 and the files 0600. With `holdsSecrets` (identity's signing
    /// keys), an existing database others may read is refused rather than quietly fixed: its
    /// secrets may already have been copied, and the operator must know.
    public static func sqlite(directory: String, name: String, migrator: DatabaseMigrator, holdsSecrets: Bool = false) throws -> ServiceDatabase {
        try PrivateFiles.makeDirectory(directory)
        let path = (directory as NSString).appendingPathComponent("\(name).sqlite")
        for file in [path, path + "-wal", path + "-shm"] {
            if holdsSecrets {
                try PrivateFiles.refuseIfShared(file, holding: "\(name)'s private keys")
            } else {
                PrivateFiles.tighten(file)
            }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try runtimeMigrator.migrate(pool)
        try migrator.migrate(pool)
        return .sqlite(pool)
    }

    /// Tables every service has, owned by the runtime.
    private static var runtimeMigrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("runtime v1: service metadata") { db in
            try db.create(table: "service_metadata") { table in
                table.primaryKey("key", .text)
                table.column("value", .text).notNull()
            }
            try db.execute(sql: "INSERT INTO service_metadata (key, value) VALUES ('created_at', datetime('now'))")
        }
        return migrator
    }

    /// True when the database answers a query (the readiness probe).
    public func isReachable() async -> Bool {
        switch self {
        case .sqlite(let pool): (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
        case .postgres(let database): await database.isReachable()
        }
    }

    /// Closes what opening started (PostgreSQL's connection pool; SQLite closes with its last reference).
    public func close() async {
        if case .postgres(let database) = self { await database.close() }
    }
}
