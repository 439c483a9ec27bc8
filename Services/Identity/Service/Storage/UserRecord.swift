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

    var onboardingState: OnboardingState { profile == nil ? .needsBusinessProfile : .complete }

    /// The user as the API shows them.
    var message: User {
        User(
            id: id, email: email, fullName: fullName, emailVerified: emailVerifiedAt != nil,
            onboardingState: onboardingState, businessProfile: profile, createdAt: createdAt)
    }

    // Cached statements: these run on every authenticated call and every sign-in.
    static func fetch(_ db: Database, id: String) throws -> UserRecord? {
        try fetchOne(db.cachedStatement(sql: "SELECT * FROM user WHERE id = ?"), arguments: [id])
    }

    static func fetch(_ db: Database, email: EmailAddress) throws -> UserRecord? {
        try fetchOne(db.cachedStatement(sql: "SELECT * FROM user WHERE email_key = ? AND duplicate_of IS NULL"), arguments: [email.key])
    }
}
