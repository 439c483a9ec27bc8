import Contracts
import Foundation
import GRDB

/// organization's storage in its own SQLite file (the embedded default). SQLite runs one write
/// transaction at a time, so a rule checked inside a write cannot be slipped past by a
/// concurrent one: nothing more is needed here for the last admin, the 25-organization limit or
/// a link's one organization.
struct SQLiteOrganizationStorage: OrganizationStorage {
    let pool: DatabasePool

    func views(userID: String) async throws -> [MembershipRecord] {
        try await pool.tracedRead { db in try OrganizationStore.views(db, userID: userID) }
    }

    func view(organizationID: String, userID: String) async throws -> MembershipRecord? {
        try await pool.tracedRead { db in try OrganizationStore.view(db, organizationID: organizationID, userID: userID) }
    }

    func selectedView(userID: String) async throws -> MembershipRecord? {
        try await pool.tracedRead { db in
            guard let id = try OrganizationStore.selectedOrganizationID(db, userID: userID) else { return nil }
            return try OrganizationStore.view(db, organizationID: id, userID: userID)
        }
    }

    func invitations(userID: String) async throws -> [InvitationRecord] {
        try await pool.tracedRead { db in try OrganizationStore.invitations(db, userID: userID) }
    }

    func members(organizationID: String) async throws -> [MemberRecord] {
        try await pool.tracedRead { db in try OrganizationStore.members(db, organizationID: organizationID) }
    }

    func role(organizationID: String, userID: String) async throws -> Role? {
        try await pool.tracedRead { db in try OrganizationStore.role(db, organizationID: organizationID, userID: userID) }
    }

    func billing(organizationID: String) async throws -> BillingRecord {
        try await pool.tracedRead { db in try OrganizationStore.billing(db, organizationID: organizationID) }
    }

    func auditEvents(organizationID: String, limit: Int) async throws -> [AuditRecord] {
        try await pool.tracedRead { db in try OrganizationStore.auditEvents(db, organizationID: organizationID, limit: limit) }
    }

    func createOrganization(
        id: String, name: String, userID: String, idempotencyKey: String?, at: Date,
        check: @Sendable (Int) throws(OrganizationError) -> Void
    ) async throws -> MembershipRecord {
        try await pool.tracedWrite { db -> MembershipRecord in
            if let idempotencyKey, let existing = try OrganizationStore.createdWith(db, userID: userID, idempotencyKey: idempotencyKey) {
                guard let view = try OrganizationStore.view(db, organizationID: existing, userID: userID) else { throw OrganizationError.notFound }
                return view
            }
            try check(try OrganizationStore.membershipCount(db, userID: userID))
            try OrganizationStore.insertOrganization(db, id: id, name: name, createdBy: userID, at: at)
            try OrganizationStore.addMembership(db, organizationID: id, userID: userID, role: .admin, at: at)
            if let idempotencyKey {
                try OrganizationStore.rememberCreation(db, userID: userID, idempotencyKey: idempotencyKey, organizationID: id, at: at)
            }
            try OrganizationStore.audit(db, organizationID: id, action: "organization_created", actor: userID, detail: name, at: at)
            return MembershipRecord(id: id, name: name, createdAt: at, role: .admin)
        }
    }

    func invite(
        organizationID: String, userID: String, role: Role, actor: String, at: Date,
        check: @Sendable (Role?, Role?) throws(OrganizationError) -> Void
    ) async throws -> InvitationRecord {
        try await pool.tracedWrite { db -> InvitationRecord in
            try check(
                try OrganizationStore.role(db, organizationID: organizationID, userID: actor),
                try OrganizationStore.role(db, organizationID: organizationID, userID: userID))
            try OrganizationStore.invite(db, organizationID: organizationID, userID: userID, role: role, by: actor, at: at)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "member_invited", actor: actor, subject: userID, detail: role.rawValue, at: at)
            guard let invitation = try OrganizationStore.invitations(db, userID: userID, organizationID: organizationID).first else {
                throw OrganizationError.notFound
            }
            return invitation
        }
    }

    func acceptInvitation(
        organizationID: String, userID: String, at: Date,
        check: @Sendable (InvitationRecord?, Int) throws(OrganizationError) -> Void
    ) async throws -> MembershipRecord {
        try await pool.tracedWrite { db -> MembershipRecord in
            let invitation = try OrganizationStore.invitations(db, userID: userID, organizationID: organizationID).first
            // Accepted already: a retry whose first answer was lost gets the same answer.
            if invitation == nil, let member = try OrganizationStore.view(db, organizationID: organizationID, userID: userID) { return member }
            try check(invitation, try OrganizationStore.membershipCount(db, userID: userID))
            guard let invitation else { throw OrganizationError.noInvitation }
            try OrganizationStore.addMembership(db, organizationID: organizationID, userID: userID, role: invitation.role, at: at)
            try OrganizationStore.deleteInvitation(db, organizationID: organizationID, userID: userID)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "member_added", actor: userID, subject: userID,
                detail: "\(invitation.role.rawValue), invited by \(invitation.invitedBy)", at: at)
            guard let view = try OrganizationStore.view(db, organizationID: organizationID, userID: userID) else { throw OrganizationError.notFound }
            return view
        }
    }

    func declineInvitation(organizationID: String, userID: String, at: Date) async throws -> InvitationRecord? {
        try await pool.tracedWrite { db -> InvitationRecord? in
            guard let invitation = try OrganizationStore.invitations(db, userID: userID, organizationID: organizationID).first else { return nil }
            try OrganizationStore.deleteInvitation(db, organizationID: organizationID, userID: userID)
            try OrganizationStore.audit(db, organizationID: organizationID, action: "invitation_declined", actor: userID, subject: userID, at: at)
            return invitation
        }
    }

    func changeRole(
        organizationID: String, userID: String, to role: Role, actor: String, at: Date,
        check: @Sendable (Role?, MemberRecord?, Int) throws(OrganizationError) -> Bool
    ) async throws -> MemberRecord {
        try await pool.tracedWrite { db -> MemberRecord in
            let member = try OrganizationStore.member(db, organizationID: organizationID, userID: userID)
            let changes = try check(
                try OrganizationStore.role(db, organizationID: organizationID, userID: actor), member,
                try OrganizationStore.adminCount(db, organizationID: organizationID))
            guard let member else { throw OrganizationError.notMember }
            guard changes else { return member }
            try OrganizationStore.setRole(db, organizationID: organizationID, userID: userID, role: role)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "role_changed", actor: actor, subject: userID,
                detail: "\(member.role.rawValue) -> \(role.rawValue)", at: at)
            return MemberRecord(userID: userID, role: role, addedAt: member.addedAt)
        }
    }

    func endMembership(
        organizationID: String, userID: String, actor: String, action: String, at: Date,
        check: @Sendable (Role?, Role?, Int) throws(OrganizationError) -> Void
    ) async throws {
        try await pool.tracedWrite { db in
            let memberRole = try OrganizationStore.role(db, organizationID: organizationID, userID: userID)
            try check(
                try OrganizationStore.role(db, organizationID: organizationID, userID: actor), memberRole,
                try OrganizationStore.adminCount(db, organizationID: organizationID))
            try OrganizationStore.deleteMembership(db, organizationID: organizationID, userID: userID)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: action, actor: actor, subject: userID, detail: memberRole?.rawValue, at: at)
        }
    }

    func select(organizationID: String, userID: String) async throws -> MembershipRecord? {
        try await pool.tracedWrite { db -> MembershipRecord? in
            guard let view = try OrganizationStore.view(db, organizationID: organizationID, userID: userID) else { return nil }
            try OrganizationStore.select(db, organizationID: organizationID, userID: userID)
            return view
        }
    }

    func setBilling(
        organizationID: String, awsAccountID: String, linkID: String, contract: ContractSummary, linkedBy: String?, service: String, at: Date,
        check: @Sendable (Bool, BillingRecord, Bool) throws(OrganizationError) -> OrganizationRules.BillingChange
    ) async throws -> BillingRecord {
        let contractJSON = String(decoding: try JSONEncoder().encode(contract), as: UTF8.self)
        return try await pool.tracedWrite { db in
            let current = try OrganizationStore.billing(db, organizationID: organizationID)
            let change = try check(
                try OrganizationStore.organization(db, id: organizationID) != nil, current,
                try OrganizationStore.organizationBilled(db, linkID: linkID) != nil)
            switch change {
            case .none:
                return current
            case .replaceContract:
                try OrganizationStore.replaceContract(db, organizationID: organizationID, contract: contractJSON, at: at)
                try OrganizationStore.audit(
                    db, organizationID: organizationID, action: "billing_updated", actor: "service:\(service)",
                    detail: "AWS_MARKETPLACE link \(linkID): contract changed", at: at)
            case .set:
                try OrganizationStore.insertBilling(
                    db, organizationID: organizationID, awsAccountID: awsAccountID, linkID: linkID, contract: contractJSON, at: at)
                try OrganizationStore.audit(
                    db, organizationID: organizationID, action: "billing_set", actor: "service:\(service)",
                    subject: linkedBy, detail: "AWS_MARKETPLACE link \(linkID)", at: at)
            }
            return try OrganizationStore.billing(db, organizationID: organizationID)
        }
    }

    func clearBilling(
        organizationID: String, linkID: String, reason: String, service: String, at: Date,
        check: @Sendable (Bool, BillingRecord) throws(OrganizationError) -> Bool
    ) async throws -> BillingRecord {
        try await pool.tracedWrite { db in
            let current = try OrganizationStore.billing(db, organizationID: organizationID)
            guard try check(try OrganizationStore.organization(db, id: organizationID) != nil, current) else { return current }
            try OrganizationStore.deleteBilling(db, organizationID: organizationID)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "billing_cleared", actor: "service:\(service)",
                detail: "link \(linkID): \(reason)", at: at)
            return try OrganizationStore.billing(db, organizationID: organizationID)
        }
    }
}
