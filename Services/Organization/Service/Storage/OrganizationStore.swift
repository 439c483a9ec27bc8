import Contracts
import Foundation
import GRDB
import ServiceRuntime

/// organization's tables, read and written inside the caller's transaction.
enum OrganizationStore {
    struct OrganizationRow: DatabaseRecord {
        var id: String
        var name: String
        var createdAt: Date
    }

    static func organization(_ db: Database, id: String) throws -> OrganizationRow? {
        try OrganizationRow.fetchOne(db, sql: "SELECT id, name, created_at FROM organization WHERE id = ?", arguments: [id])
    }

    /// The user's role in the organization; nil when not a member (or no such organization).
    static func role(_ db: Database, organizationID: String, userID: String) throws -> Role? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT role FROM membership WHERE organization_id = ? AND user_id = ?"),
            arguments: [organizationID, userID]
        ).flatMap(Role.init(rawValue:))
    }

    /// The organization as `userID` sees it, if they are a member.
    static func view(_ db: Database, organizationID: String, userID: String) throws -> MembershipRecord? {
        try MembershipRecord.fetchOne(
            db,
            sql: """
                SELECT o.id, o.name, o.created_at, m.role FROM organization o JOIN membership m ON m.organization_id = o.id
                WHERE o.id = ? AND m.user_id = ?
                """, arguments: [organizationID, userID])
    }

    static func views(_ db: Database, userID: String) throws -> [MembershipRecord] {
        try MembershipRecord.fetchAll(
            db,
            sql: """
                SELECT o.id, o.name, o.created_at, m.role FROM organization o JOIN membership m ON m.organization_id = o.id
                WHERE m.user_id = ? ORDER BY o.name, o.id
                """, arguments: [userID])
    }

    /// Makes or renews the invitation of `userID` (a re-invitation takes the new role).
    static func invite(_ db: Database, organizationID: String, userID: String, role: Role, by actor: String, at: Date) throws {
        try db.execute(
            sql: """
                INSERT INTO invitation (organization_id, user_id, role, invited_by, invited_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role, invited_by = excluded.invited_by,
                    invited_at = excluded.invited_at
                """, arguments: [organizationID, userID, role.rawValue, actor, at.timeIntervalSince1970])
    }

    /// The user's pending invitations, newest first; or the one to `organizationID`.
    static func invitations(_ db: Database, userID: String, organizationID: String? = nil) throws -> [InvitationRecord] {
        try InvitationRecord.fetchAll(
            db,
            sql: """
                SELECT i.organization_id, o.name AS organization_name, i.user_id, i.role, i.invited_by, i.invited_at
                FROM invitation i JOIN organization o ON o.id = i.organization_id
                WHERE i.user_id = ? AND (? IS NULL OR i.organization_id = ?) ORDER BY i.invited_at DESC
                """, arguments: [userID, organizationID, organizationID])
    }

    static func deleteInvitation(_ db: Database, organizationID: String, userID: String) throws {
        try db.execute(sql: "DELETE FROM invitation WHERE organization_id = ? AND user_id = ?", arguments: [organizationID, userID])
    }

    static func membershipCount(_ db: Database, userID: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM membership WHERE user_id = ?", arguments: [userID]) ?? 0
    }

    static func adminCount(_ db: Database, organizationID: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM membership WHERE organization_id = ? AND role = 'ADMIN'", arguments: [organizationID]) ?? 0
    }

    static func members(_ db: Database, organizationID: String) throws -> [MemberRecord] {
        try MemberRecord.fetchAll(
            db, sql: "SELECT user_id, role, added_at FROM membership WHERE organization_id = ? ORDER BY added_at, user_id",
            arguments: [organizationID])
    }

    static func member(_ db: Database, organizationID: String, userID: String) throws -> MemberRecord? {
        try MemberRecord.fetchOne(
            db, sql: "SELECT user_id, role, added_at FROM membership WHERE organization_id = ? AND user_id = ?",
            arguments: [organizationID, userID])
    }

    static func billing(_ db: Database, organizationID: String) throws -> BillingRecord {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM billing_account WHERE organization_id = ?", arguments: [organizationID]) else {
            return BillingRecord(organizationId: organizationID, provider: .none)
        }
        let contract = try? JSONDecoder().decode(ContractSummary.self, from: Data((row["contract"] as String).utf8))
        return BillingRecord(
            organizationId: organizationID, provider: .awsMarketplace, awsAccountId: row["aws_account_id"],
            linkId: row["link_id"], contract: contract, updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    static func audit(
        _ db: Database, organizationID: String, action: String, actor: String, subject: String? = nil,
        detail: String? = nil, at: Date
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO audit_event (organization_id, at, action, actor, subject_user_id, detail) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [organizationID, at.timeIntervalSince1970, action, actor, subject, detail])
    }

    static func auditEvents(_ db: Database, organizationID: String, limit: Int) throws -> [AuditRecord] {
        try AuditRecord.fetchAll(
            db,
            sql: """
                SELECT action, actor, subject_user_id, detail, at FROM audit_event WHERE organization_id = ? ORDER BY id DESC LIMIT ?
                """, arguments: [organizationID, limit])
    }

    // MARK: Writes

    /// The organization a user created with `idempotencyKey`, if any.
    static func createdWith(_ db: Database, userID: String, idempotencyKey: String) throws -> String? {
        try String.fetchOne(
            db, sql: "SELECT organization_id FROM create_idempotency WHERE user_id = ? AND idempotency_key = ?",
            arguments: [userID, idempotencyKey])
    }

    static func rememberCreation(_ db: Database, userID: String, idempotencyKey: String, organizationID: String, at: Date) throws {
        try db.execute(
            sql: "INSERT INTO create_idempotency (user_id, idempotency_key, organization_id, created_at) VALUES (?, ?, ?, ?)",
            arguments: [userID, idempotencyKey, organizationID, at.timeIntervalSince1970])
    }

    static func insertOrganization(_ db: Database, id: String, name: String, createdBy userID: String, at: Date) throws {
        try db.execute(
            sql: "INSERT INTO organization (id, name, created_at, created_by) VALUES (?, ?, ?, ?)",
            arguments: [id, name, at.timeIntervalSince1970, userID])
    }

    static func addMembership(_ db: Database, organizationID: String, userID: String, role: Role, at: Date) throws {
        try db.execute(
            sql: "INSERT INTO membership (organization_id, user_id, role, added_at) VALUES (?, ?, ?, ?)",
            arguments: [organizationID, userID, role.rawValue, at.timeIntervalSince1970])
    }

    static func setRole(_ db: Database, organizationID: String, userID: String, role: Role) throws {
        try db.execute(
            sql: "UPDATE membership SET role = ? WHERE organization_id = ? AND user_id = ?", arguments: [role.rawValue, organizationID, userID])
    }

    /// Ends a membership, and the user's selection of that organization with it.
    static func deleteMembership(_ db: Database, organizationID: String, userID: String) throws {
        try db.execute(sql: "DELETE FROM membership WHERE organization_id = ? AND user_id = ?", arguments: [organizationID, userID])
        try db.execute(sql: "DELETE FROM selected_organization WHERE user_id = ? AND organization_id = ?", arguments: [userID, organizationID])
    }

    static func select(_ db: Database, organizationID: String, userID: String) throws {
        try db.execute(
            sql: """
                INSERT INTO selected_organization (user_id, organization_id) VALUES (?, ?)
                ON CONFLICT(user_id) DO UPDATE SET organization_id = excluded.organization_id
                """, arguments: [userID, organizationID])
    }

    static func selectedOrganizationID(_ db: Database, userID: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT organization_id FROM selected_organization WHERE user_id = ?", arguments: [userID])
    }

    /// The organization a marketplace link bills, if any.
    static func organizationBilled(_ db: Database, linkID: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT organization_id FROM billing_account WHERE link_id = ?", arguments: [linkID])
    }

    static func insertBilling(_ db: Database, organizationID: String, awsAccountID: String, linkID: String, contract: String, at: Date) throws {
        try db.execute(
            sql: """
                INSERT INTO billing_account (organization_id, provider, aws_account_id, link_id, contract, updated_at)
                VALUES (?, 'AWS_MARKETPLACE', ?, ?, ?, ?)
                """, arguments: [organizationID, awsAccountID, linkID, contract, at.timeIntervalSince1970])
    }

    static func replaceContract(_ db: Database, organizationID: String, contract: String, at: Date) throws {
        try db.execute(
            sql: "UPDATE billing_account SET contract = ?, updated_at = ? WHERE organization_id = ?",
            arguments: [contract, at.timeIntervalSince1970, organizationID])
    }

    static func deleteBilling(_ db: Database, organizationID: String) throws {
        try db.execute(sql: "DELETE FROM billing_account WHERE organization_id = ?", arguments: [organizationID])
    }
}
