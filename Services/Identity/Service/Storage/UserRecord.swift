import Contracts
import Foundation
import GRDB

/// A row of `user`.
struct UserRecord: FetchableRecord, Sendable {
    var id: String
    var email: String
    var fullName: String
    var passwordHash: String
    var emailVerifiedAt: Date?
    var profile: BusinessProfile?
    var createdAt: Date

    init(
        id: String, email: String, fullName: String, passwordHash: String, emailVerifiedAt: Date?, profile: BusinessProfile?, createdAt: Date
    ) {
        self.id = id
        self.email = email
        self.fullName = fullName
        self.passwordHash = passwordHash
        self.emailVerifiedAt = emailVerifiedAt
        self.profile = profile
        self.createdAt = createdAt
    }

    init(row: Row) {
        id = row["id"]
        email = row["email"]
        fullName = row["full_name"]
        passwordHash = row["password_hash"]
        emailVerifiedAt = (row["email_verified_at"] as Double?).map(Date.init(timeIntervalSince1970:))
        createdAt = Date(timeIntervalSince1970: row["created_at"])
        if let companyName: String = row["company_name"] {
            profile = BusinessProfile(
                companyName: companyName, companySize: row["company_size"], country: row["country"],
                jobTitle: row["job_title"], useCase: row["use_case"])
        }
    }

    // Cached statements: these run on every authenticated call and every sign-in.
    static func fetch(_ db: Database, id: String) throws -> UserRecord? {
        try fetchOne(db.cachedStatement(sql: "SELECT * FROM user WHERE id = ?"), arguments: [id])
    }

    static func fetch(_ db: Database, email: EmailAddress) throws -> UserRecord? {
        try fetchOne(db.cachedStatement(sql: "SELECT * FROM user WHERE email_key = ? AND duplicate_of IS NULL"), arguments: [email.key])
    }

    // MARK: Writes

    static func insert(_ db: Database, id: String, email: EmailAddress, fullName: String, passwordHash: String, at: Date) throws {
        try db.execute(
            sql: """
                INSERT INTO user (id, email, email_key, full_name, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [id, email.description, email.key, fullName, passwordHash, at.timeIntervalSince1970, at.timeIntervalSince1970])
    }

    /// The address is proven: verified (once), with the password (and name) that verification settles.
    static func markVerified(_ db: Database, id: String, passwordHash: String, fullName: String?, at: Date) throws {
        try db.execute(
            sql: """
                UPDATE user SET email_verified_at = coalesce(email_verified_at, ?), password_hash = ?, password_changed_at = ?,
                    full_name = coalesce(?, full_name) WHERE id = ?
                """, arguments: [at.timeIntervalSince1970, passwordHash, at.timeIntervalSince1970, fullName, id])
    }

    /// The same password under new hashing parameters (not a password change).
    static func replaceHash(_ db: Database, id: String, passwordHash: String) throws {
        try db.execute(sql: "UPDATE user SET password_hash = ? WHERE id = ?", arguments: [passwordHash, id])
    }

    static func changePassword(_ db: Database, id: String, passwordHash: String, at: Date) throws {
        try db.execute(
            sql: "UPDATE user SET password_hash = ?, password_changed_at = ? WHERE id = ?", arguments: [passwordHash, at.timeIntervalSince1970, id])
    }

    /// A new password from an emailed link, which proves the address too.
    static func resetPassword(_ db: Database, id: String, passwordHash: String, at: Date) throws {
        try db.execute(
            sql: """
                UPDATE user SET password_hash = ?, password_changed_at = ?, email_verified_at = coalesce(email_verified_at, ?) WHERE id = ?
                """, arguments: [passwordHash, at.timeIntervalSince1970, at.timeIntervalSince1970, id])
    }

    /// Returns false when there is no such user.
    static func updateProfile(_ db: Database, id: String, _ profile: BusinessProfile) throws -> Bool {
        try db.execute(
            sql: "UPDATE user SET company_name = ?, company_size = ?, country = ?, job_title = ?, use_case = ? WHERE id = ?",
            arguments: [profile.companyName, profile.companySize, profile.country, profile.jobTitle, profile.useCase, id])
        return db.changesCount == 1
    }
}

/// `password_reset_request`: reset requests recorded as they come, resolved by the outbox sender.
enum PasswordResetRequests {
    struct Request: Sendable {
        var email: String
        var clientIP: String?
    }

    static func record(_ db: Database, email: EmailAddress, clientIP: String?, at: Date) throws {
        try db.execute(
            sql: "INSERT INTO password_reset_request (email, client_ip, requested_at) VALUES (?, ?, ?)",
            arguments: [email.description, clientIP, at.timeIntervalSince1970])
    }

    static func any(_ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM password_reset_request)") == true
    }

    /// Removes and returns the oldest `limit` requests.
    static func take(_ db: Database, limit: Int) throws -> [Request] {
        let rows = try Row.fetchAll(db, sql: "SELECT id, email, client_ip FROM password_reset_request ORDER BY id LIMIT ?", arguments: [limit])
        for row in rows { try db.execute(sql: "DELETE FROM password_reset_request WHERE id = ?", arguments: [row["id"] as Int64]) }
        return rows.map { Request(email: $0["email"], clientIP: $0["client_ip"]) }
    }
}
