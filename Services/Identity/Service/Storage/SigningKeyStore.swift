import AccessTokens
import Foundation
import GRDB

/// The `signing_key` table: access-token signing keys; a retired key stays while its tokens may live.
enum SigningKeyStore {
    static func keys(_ db: Database, retiredAfter: Date) throws -> [StoredSigningKey] {
        try Row.fetchAll(
            db,
            sql: "SELECT kid, private_key, retired_at FROM signing_key WHERE retired_at IS NULL OR retired_at > ? ORDER BY created_at DESC",
            arguments: [retiredAfter.timeIntervalSince1970]
        ).map { row in
            StoredSigningKey(
                keyID: row["kid"], privateKey: row["private_key"], retiredAt: (row["retired_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
        }
    }

    static func addIfNone(_ db: Database, _ key: SigningKey, at now: Date) throws {
        if try Int.fetchOne(db, sql: "SELECT count(*) FROM signing_key WHERE retired_at IS NULL") == 0 {
            try insert(db, key, at: now)
        }
    }

    static func rotate(_ db: Database, to key: SigningKey, at now: Date, forgetBefore: Date) throws {
        try db.execute(sql: "UPDATE signing_key SET retired_at = ? WHERE retired_at IS NULL", arguments: [now.timeIntervalSince1970])
        try insert(db, key, at: now)
        try db.execute(sql: "DELETE FROM signing_key WHERE retired_at < ?", arguments: [forgetBefore.timeIntervalSince1970])
    }

    private static func insert(_ db: Database, _ key: SigningKey, at now: Date) throws {
        try db.execute(
            sql: "INSERT INTO signing_key (kid, private_key, created_at) VALUES (?, ?, ?)",
            arguments: [key.keyID, key.privateKey.rawRepresentation, now.timeIntervalSince1970])
    }
}
