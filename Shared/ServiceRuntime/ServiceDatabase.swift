import Foundation
import GRDB
import RPCCore

/// A service's own SQLite database, in its own data directory, migrated when opened.
public struct ServiceDatabase: Sendable {
    /// The GRDB pool: WAL mode, one writer, concurrent readers.
    public let pool: DatabasePool

    /// Opens (creating if needed) `<directory>/<name>.sqlite` and applies every pending migration.
    /// The directory is made 0700 and the files 0600. With `holdsSecrets` (identity's signing
    /// keys), an existing database others may read is refused rather than quietly fixed: its
    /// secrets may already have been copied, and the operator must know.
    public init(directory: String, name: String, migrator: DatabaseMigrator, holdsSecrets: Bool = false) throws {
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
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.runtimeMigrator.migrate(pool)
        try migrator.migrate(pool)
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
        (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }
}
