import ConnectTransport
import Contracts
import Foundation
import GRDB
import RPCCore
import ServiceRuntime

/// organization's use cases, one method per RPC; they answer with records, which the handlers
/// turn into messages. Every rule that guards a write (the membership
/// limit, the last admin, one link per organization) is checked inside the write transaction:
/// SQLite runs one writer at a time, so concurrent requests cannot slip past a check together.
final class OrganizationDirectory: Sendable {
    typealias MembershipRecord = OrganizationStore.MembershipRecord
    typealias InvitationRecord = OrganizationStore.InvitationRecord
    typealias MemberRecord = OrganizationStore.MemberRecord
    typealias BillingRecord = OrganizationStore.BillingRecord
    typealias AuditRecord = OrganizationStore.AuditRecord

    private let pool: DatabasePool
    /// identity, asked (with organization's service credential) whether an invited user exists.
    private let identity: ConnectClient
    private let now: @Sendable () -> Date
    /// Roles by (organization, user), for CheckAdmin and every authorization; invalidated by membership writes.
    private let roles = ReadThroughCache<MembershipKey, Role>()

    struct MembershipKey: Hashable, Sendable {
        var organizationID: String
        var userID: String
    }

    init(pool: DatabasePool, identity: ConnectClient, now: @escaping @Sendable () -> Date) {
        self.pool = pool
        self.identity = identity
        self.now = now
    }

    // MARK: Organizations

    func create(_ request: CreateOrganizationRequest, userID: String, idempotencyKey: String?) async throws -> MembershipRecord {
        let name = try OrganizationRules.name(request.name)
        let key = try idempotencyKey.map(OrganizationRules.idempotencyKey)
        let at = now()
        let organization = try await pool.write { db -> MembershipRecord in
            if let key, let existing = try OrganizationStore.createdWith(db, userID: userID, idempotencyKey: key) {
                guard let view = try OrganizationStore.view(db, organizationID: existing, userID: userID) else { throw OrganizationError.notFound }
                return view
            }
            guard try OrganizationStore.membershipCount(db, userID: userID) < OrganizationRules.maxOrganizationsPerUser else {
                throw OrganizationError.tooManyOrganizations(limit: OrganizationRules.maxOrganizationsPerUser)
            }
            let id = UUID().uuidString.lowercased()
            try OrganizationStore.insertOrganization(db, id: id, name: name, createdBy: userID, at: at)
            try OrganizationStore.addMembership(db, organizationID: id, userID: userID, role: .admin, at: at)
            if let key { try OrganizationStore.rememberCreation(db, userID: userID, idempotencyKey: key, organizationID: id, at: at) }
            try OrganizationStore.audit(db, organizationID: id, action: "organization_created", actor: userID, detail: name, at: at)
            return MembershipRecord(id: id, name: name, createdAt: at, role: .admin)
        }
        roles.invalidate()
        return organization
    }

    func list(userID: String) async throws -> [MembershipRecord] {
        try await pool.read { db in try OrganizationStore.views(db, userID: userID) }
    }

    func get(_ ref: OrganizationRef, userID: String) async throws -> MembershipRecord {
        let id = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        guard let view = try await pool.read({ db in try OrganizationStore.view(db, organizationID: id, userID: userID) }) else {
            throw OrganizationError.notFound
        }
        return view
    }

    func select(_ ref: OrganizationRef, userID: String) async throws -> MembershipRecord {
        let id = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        return try await pool.write { db in
            guard let view = try OrganizationStore.view(db, organizationID: id, userID: userID) else { throw OrganizationError.notFound }
            try OrganizationStore.select(db, organizationID: id, userID: userID)
            return view
        }
    }

    func selected(userID: String) async throws -> MembershipRecord? {
        try await pool.read { db in
            guard let id = try OrganizationStore.selectedOrganizationID(db, userID: userID) else { return nil }
            return try OrganizationStore.view(db, organizationID: id, userID: userID)
        }
    }

    // MARK: Members

    /// Invites a user; they join only by accepting. So nobody is made a member (let alone an
    /// ADMIN) of an organization they did not choose, and invitations cannot fill anyone's
    /// 25-organization limit: it is checked when they accept.
    func addMember(_ request: MemberRequest, actor: String) async throws -> InvitationRecord {
        let organizationID = try OrganizationRules.id(request.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(request.userId, field: "userId")
        try await requireUserExists(userID)
        let at = now()
        return try await pool.write { db -> InvitationRecord in
            try Self.requireRole(db, organizationID: organizationID, userID: actor, in: [.admin])
            guard try OrganizationStore.role(db, organizationID: organizationID, userID: userID) == nil else { throw OrganizationError.alreadyMember }
            try OrganizationStore.invite(db, organizationID: organizationID, userID: userID, role: request.role, by: actor, at: at)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "member_invited", actor: actor, subject: userID,
                detail: request.role.rawValue, at: at)
            guard let invitation = try OrganizationStore.invitations(db, userID: userID, organizationID: organizationID).first else {
                throw OrganizationError.notFound
            }
            return invitation
        }
    }

    /// Asks identity; an unreachable identity is `unavailable`, never taken as a yes.
    private func requireUserExists(_ userID: String) async throws {
        let found: UserDirectory
        do {
            found = try await identity.call(Identity.lookupUsers, LookupUsersRequest(userIds: [userID]), options: .init(timeout: .seconds(5)))
        } catch {
            throw OrganizationError.identityUnavailable
        }
        guard found.users.contains(where: { $0.id == userID }) else { throw OrganizationError.unknownUser }
    }

    func invitations(userID: String) async throws -> [InvitationRecord] {
        try await pool.read { db in try OrganizationStore.invitations(db, userID: userID) }
    }

    func acceptInvitation(_ ref: OrganizationRef, userID: String) async throws -> MembershipRecord {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        let at = now()
        let organization = try await pool.write { db -> MembershipRecord in
            guard let invitation = try OrganizationStore.invitations(db, userID: userID, organizationID: organizationID).first else {
                throw OrganizationError.noInvitation
            }
            guard try OrganizationStore.membershipCount(db, userID: userID) < OrganizationRules.maxOrganizationsPerUser else {
                throw OrganizationError.tooManyOrganizations(limit: OrganizationRules.maxOrganizationsPerUser)
            }
            try OrganizationStore.addMembership(db, organizationID: organizationID, userID: userID, role: invitation.role, at: at)
            try OrganizationStore.deleteInvitation(db, organizationID: organizationID, userID: userID)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "member_added", actor: userID, subject: userID,
                detail: "\(invitation.role.rawValue), invited by \(invitation.invitedBy)", at: at)
            guard let view = try OrganizationStore.view(db, organizationID: organizationID, userID: userID) else { throw OrganizationError.notFound }
            return view
        }
        roles.invalidate()
        return organization
    }

    func declineInvitation(_ ref: OrganizationRef, userID: String) async throws {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        let at = now()
        try await pool.write { db in
            guard try !OrganizationStore.invitations(db, userID: userID, organizationID: organizationID).isEmpty else {
                throw OrganizationError.noInvitation
            }
            try OrganizationStore.deleteInvitation(db, organizationID: organizationID, userID: userID)
            try OrganizationStore.audit(db, organizationID: organizationID, action: "invitation_declined", actor: userID, subject: userID, at: at)
        }
    }

    func changeRole(_ request: MemberRequest, actor: String) async throws -> MemberRecord {
        let organizationID = try OrganizationRules.id(request.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(request.userId, field: "userId")
        let at = now()
        let member = try await pool.write { db -> MemberRecord in
            try Self.requireRole(db, organizationID: organizationID, userID: actor, in: [.admin])
            guard let current = try OrganizationStore.member(db, organizationID: organizationID, userID: userID) else {
                throw OrganizationError.notMember
            }
            if current.role == request.role { return current }
            if current.role == .admin, try OrganizationStore.adminCount(db, organizationID: organizationID) <= 1 {
                throw OrganizationError.lastAdmin
            }
            try OrganizationStore.setRole(db, organizationID: organizationID, userID: userID, role: request.role)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "role_changed", actor: actor, subject: userID,
                detail: "\(current.role.rawValue) -> \(request.role.rawValue)", at: at)
            return MemberRecord(userID: userID, role: request.role, addedAt: current.addedAt)
        }
        roles.invalidate()
        return member
    }

    func removeMember(_ ref: MemberRef, actor: String) async throws {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(ref.userId, field: "userId")
        try await removeMembership(organizationID: organizationID, userID: userID, actor: actor, action: "member_removed") { db in
            try Self.requireRole(db, organizationID: organizationID, userID: actor, in: [.admin])
        }
    }

    func leave(_ ref: OrganizationRef, userID: String) async throws {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        try await removeMembership(organizationID: organizationID, userID: userID, actor: userID, action: "member_left") { db in
            guard try OrganizationStore.role(db, organizationID: organizationID, userID: userID) != nil else { throw OrganizationError.notFound }
        }
    }

    private func removeMembership(
        organizationID: String, userID: String, actor: String, action: String,
        authorize: @escaping @Sendable (Database) throws -> Void
    ) async throws {
        let at = now()
        try await pool.write { db in
            try authorize(db)
            guard let role = try OrganizationStore.role(db, organizationID: organizationID, userID: userID) else { throw OrganizationError.notMember }
            if role == .admin, try OrganizationStore.adminCount(db, organizationID: organizationID) <= 1 { throw OrganizationError.lastAdmin }
            try OrganizationStore.deleteMembership(db, organizationID: organizationID, userID: userID)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: action, actor: actor, subject: userID,
                detail: role.rawValue, at: at)
        }
        roles.invalidate()
    }

    func members(_ ref: OrganizationRef, userID: String) async throws -> [MemberRecord] {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        _ = try await role(organizationID: organizationID, userID: userID, in: Set(Role.allCases))
        return try await pool.read { db in try OrganizationStore.members(db, organizationID: organizationID) }
    }

    // MARK: Admin checks and billing

    /// The user's role in the organization, nil when not a member: what other services decide by.
    func checkAdmin(_ ref: MemberRef) async throws -> Role? {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(ref.userId, field: "userId")
        return try await cachedRole(organizationID: organizationID, userID: userID)
    }

    func billing(_ ref: OrganizationRef, userID: String) async throws -> BillingRecord {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        _ = try await role(organizationID: organizationID, userID: userID, in: OrganizationRules.billingReaders)
        var account = try await pool.read { db in try OrganizationStore.billing(db, organizationID: organizationID) }
        // A user sees the AWS account masked, here and inside the contract's license ARN.
        account.awsAccountId = account.awsAccountId.map(AWSAccountMask.account)
        if let offerID = account.contract?.offerId { account.contract?.offerId = AWSAccountMask.arn(offerID) }
        return account
    }

    func setBilling(_ request: SetBillingAccountRequest, service: String) async throws -> BillingRecord {
        let organizationID = try OrganizationRules.id(request.organizationId, field: "organizationId")
        guard request.provider == .awsMarketplace else {
            throw OrganizationError.invalid(field: "provider", reason: "must be AWS_MARKETPLACE (use ClearBillingAccount to remove it)")
        }
        let account = try OrganizationRules.awsAccountID(request.awsAccountId)
        guard (1...128).contains(request.linkId.utf8.count) else {
            throw OrganizationError.invalid(field: "linkId", reason: "must be 1 to 128 characters")
        }
        guard (1...256).contains(request.contract.productCode.utf8.count), (1...256).contains(request.contract.offerId.utf8.count),
            request.contract.dimensions.count <= 100
        else {
            throw OrganizationError.invalid(
                field: "contract", reason: "needs a productCode and offerId of 1 to 256 characters and at most 100 dimensions")
        }
        let contract = String(decoding: try JSONEncoder().encode(request.contract), as: UTF8.self)
        let at = now()
        return try await pool.write { db in
            guard try OrganizationStore.organization(db, id: organizationID) != nil else { throw OrganizationError.notFound }
            let current = try OrganizationStore.billing(db, organizationID: organizationID)
            if current.provider == .awsMarketplace {
                guard current.linkId == request.linkId else { throw OrganizationError.billedThroughAnotherLink }
                // The same link again: a retry changes nothing; a new contract (the buyer's
                // entitlements changed) replaces the old one.
                guard current.contract != request.contract else { return current }
                try OrganizationStore.replaceContract(db, organizationID: organizationID, contract: contract, at: at)
                try OrganizationStore.audit(
                    db, organizationID: organizationID, action: "billing_updated", actor: "service:\(service)",
                    detail: "AWS_MARKETPLACE link \(request.linkId): contract changed", at: at)
                return try OrganizationStore.billing(db, organizationID: organizationID)
            }
            if try OrganizationStore.organizationBilled(db, linkID: request.linkId) != nil {
                throw OrganizationError.linkBindsAnotherOrganization
            }
            try OrganizationStore.insertBilling(
                db, organizationID: organizationID, awsAccountID: account, linkID: request.linkId, contract: contract, at: at)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "billing_set", actor: "service:\(service)",
                subject: request.linkedBy, detail: "AWS_MARKETPLACE link \(request.linkId)", at: at)
            return try OrganizationStore.billing(db, organizationID: organizationID)
        }
    }

    func clearBilling(_ request: ClearBillingAccountRequest, service: String) async throws -> BillingRecord {
        let organizationID = try OrganizationRules.id(request.organizationId, field: "organizationId")
        guard (1...128).contains(request.linkId.utf8.count) else {
            throw OrganizationError.invalid(field: "linkId", reason: "must be 1 to 128 characters")
        }
        guard TextLength.isAtMost(request.reason, characters: 500) else {
            throw OrganizationError.invalid(field: "reason", reason: "must be at most 500 characters")
        }
        let at = now()
        return try await pool.write { db in
            guard try OrganizationStore.organization(db, id: organizationID) != nil else { throw OrganizationError.notFound }
            let current = try OrganizationStore.billing(db, organizationID: organizationID)
            // Only the link that set it may clear it; clearing again is a retry and changes nothing.
            guard current.linkId == request.linkId else { return current }
            try OrganizationStore.deleteBilling(db, organizationID: organizationID)
            try OrganizationStore.audit(
                db, organizationID: organizationID, action: "billing_cleared", actor: "service:\(service)",
                detail: "link \(request.linkId): \(request.reason)", at: at)
            return try OrganizationStore.billing(db, organizationID: organizationID)
        }
    }

    func auditEvents(_ ref: OrganizationRef, userID: String) async throws -> [AuditRecord] {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        _ = try await role(organizationID: organizationID, userID: userID, in: [.admin])
        return try await pool.read { db in try OrganizationStore.auditEvents(db, organizationID: organizationID, limit: 500) }
    }

    // MARK: Authorization

    /// The caller's role if it is one of `allowed`; a non-member gets not-found, another role permission-denied.
    private func role(organizationID: String, userID: String, in allowed: Set<Role>) async throws -> Role {
        guard let role = try await cachedRole(organizationID: organizationID, userID: userID) else { throw OrganizationError.notFound }
        try OrganizationRules.require(role, in: allowed)
        return role
    }

    private func cachedRole(organizationID: String, userID: String) async throws -> Role? {
        try await roles.value(for: MembershipKey(organizationID: organizationID, userID: userID)) { [pool] in
            try await pool.read { db in try OrganizationStore.role(db, organizationID: organizationID, userID: userID) }
        }
    }

    /// The same check inside a write transaction, against what that transaction sees.
    private static func requireRole(_ db: Database, organizationID: String, userID: String, in allowed: Set<Role>) throws {
        guard let role = try OrganizationStore.role(db, organizationID: organizationID, userID: userID) else { throw OrganizationError.notFound }
        try OrganizationRules.require(role, in: allowed)
    }
}
