import AccessTokens
import Foundation
import GRDB
import ServiceRuntime

/// The `session` table: sign-in sessions, found by the hash of their token.
enum SessionStore {
    struct Session: DatabaseRecord, Sendable {
        var id: String
        var userID: String
        var createdAt: Date
        var lastUsedAt: Date
        var revokedAt: Date?
    }

    static func create(_ db: Database, userID: String, clientIP: String?, at now: Date) throws -> (Session, SecretToken) {
        let token = SecretToken.generate()
        let session = Session(id: UUID().uuidString.lowercased(), userID: userID, createdAt: now, lastUsedAt: now)
        try db.execute(
            sql: """
                INSERT INTO session (id, token_hash, user_id, created_at, last_used_at, client_ip) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [session.id, token.hash, userID, now.timeIntervalSince1970, now.timeIntervalSince1970, clientIP])
        return (session, token)
    }

    static func find(_ db: Database, token: String) throws -> Session? {
        guard SecretToken.isWellFormed(token) else { return nil }
        return try Session.fetchOne(
            db, sql: "SELECT id, user_id, created_at, last_used_at, revoked_at FROM session WHERE token_hash = ?",
            arguments: [SecretToken.hash(token)])
    }

    static func touch(_ db: Database, id: String, at now: Date) throws {
        try db.execute(sql: "UPDATE session SET last_used_at = ? WHERE id = ?", arguments: [now.timeIntervalSince1970, id])
    }

    static func revoke(_ db: Database, id: String, at now: Date) throws {
        try db.execute(sql: "UPDATE session SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [now.timeIntervalSince1970, id])
    }

    /// Revokes every live session of the user except `keeping`; returns how many.
    static func revokeAll(_ db: Database, userID: String, keeping: String? = nil, rules: SessionRules, at now: Date) throws -> Int {
        let time = now.timeIntervalSince1970
        try db.execute(
            sql: """
                UPDATE session SET revoked_at = ?
                WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ? AND created_at > ? AND last_used_at > ?
                """, arguments: [time, userID, keeping, time - rules.absoluteLifetime, time - rules.idleLifetime])
        return db.changesCount
    }
}
