import AccessTokens
import Foundation
import GRDB

/// The `one_time_token` table: email links, stored as hashes.
enum TokenStore {
    /// Stores a new token for `userID`, superseding the user's earlier unused ones of the same purpose.
    /// A verification link may carry the registration that asked for it (`registration`).
    static func issue(
        _ db: Database, _ purpose: OneTimeToken.Purpose, userID: String, registration: OneTimeToken.Registration? = nil,
        at now: Date
    ) throws -> SecretToken {
        let token = SecretToken.generate()
        try store(db, token, purpose, userID: userID, registration: registration, at: now)
        return token
    }

    /// Stores `token` (already put in an email) as `issue` does.
    static func store(
        _ db: Database, _ token: SecretToken, _ purpose: OneTimeToken.Purpose, userID: String,
        registration: OneTimeToken.Registration? = nil, at now: Date
    ) throws {
        try db.execute(
            sql: """
                UPDATE one_time_token SET superseded_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL AND superseded_at IS NULL
                """, arguments: [now.timeIntervalSince1970, userID, purpose.rawValue])
        try db.execute(
            sql: """
                INSERT INTO one_time_token (token_hash, purpose, user_id, created_at, expires_at, password_hash, full_name)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                token.hash, purpose.rawValue, userID, now.timeIntervalSince1970,
                now.timeIntervalSince1970 + OneTimeToken.lifetime, registration?.passwordHash, registration?.fullName
            ])
    }

    /// The stored token of this purpose, whatever its state; nil when there is none.
    static func find(_ db: Database, _ value: String, purpose: OneTimeToken.Purpose) throws -> OneTimeToken? {
        guard SecretToken.isWellFormed(value),
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT user_id, expires_at, used_at, superseded_at, password_hash, full_name FROM one_time_token WHERE token_hash = ? AND purpose = ?
                    """, arguments: [SecretToken.hash(value), purpose.rawValue])
        else { return nil }
        return OneTimeToken(
            purpose: purpose, userID: row["user_id"], expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            usedAt: (row["used_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            supersededAt: (row["superseded_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            registration: (row["password_hash"] as String?).map { .init(passwordHash: $0, fullName: row["full_name"]) })
    }

    static func markUsed(_ db: Database, _ value: String, at now: Date) throws {
        try db.execute(
            sql: "UPDATE one_time_token SET used_at = ? WHERE token_hash = ?",
            arguments: [now.timeIntervalSince1970, SecretToken.hash(value)])
    }
}
