import ConnectTransport
import Contracts
import Foundation
import RPCCore
import ServiceRuntime

/// organization's use cases, one method per RPC; they answer with records, which the handlers
/// turn into messages. Every rule that guards a write (the membership limit, the last admin, one
/// link per organization) is a function of `OrganizationRules` that the storage asks inside the
/// write's transaction, on what that transaction read (`OrganizationStorage` says how each
/// backend keeps concurrent writers from slipping past it).
final class OrganizationDirectory: Sendable {
    private let storage: any OrganizationStorage
    /// identity, asked (with organization's service credential) whether an invited user exists.
    private let identity: ConnectClient
    private let now: @Sendable () -> Date
    /// Roles by (organization, user), for CheckAdmin and every authorization; cleared by this
    /// replica's membership writes and, with PostgreSQL, by every other replica's (`rolesChanged`).
    private let roles = ReadThroughCache<MembershipKey, Role>()

    struct MembershipKey: Hashable, Sendable {
        var organizationID: String
        var userID: String
    }

    init(storage: any OrganizationStorage, identity: ConnectClient, now: @escaping @Sendable () -> Date) {
        self.storage = storage
        self.identity = identity
        self.now = now
    }

    /// Another replica changed memberships: cached roles may be wrong.
    func rolesChanged() {
        roles.invalidate()
    }

    // MARK: Organizations

    func create(_ request: CreateOrganizationRequest, userID: String, idempotencyKey: String?) async throws -> MembershipRecord {
        let name = try OrganizationRules.name(request.name)
        let key = try idempotencyKey.map(OrganizationRules.idempotencyKey)
        let organization = try await storage.createOrganization(
            id: UUID().uuidString.lowercased(), name: name, userID: userID, idempotencyKey: key, at: now()
        ) { count throws(OrganizationError) in try OrganizationRules.mayJoin(membershipCount: count) }
        roles.invalidate()
        return organization
    }

    func list(userID: String) async throws -> [MembershipRecord] {
        try await storage.views(userID: userID)
    }

    func get(_ ref: OrganizationRef, userID: String) async throws -> MembershipRecord {
        let id = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        guard let view = try await storage.view(organizationID: id, userID: userID) else { throw OrganizationError.notFound }
        return view
    }

    func select(_ ref: OrganizationRef, userID: String) async throws -> MembershipRecord {
        let id = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        guard let view = try await storage.select(organizationID: id, userID: userID) else { throw OrganizationError.notFound }
        return view
    }

    func selected(userID: String) async throws -> MembershipRecord? {
        try await storage.selectedView(userID: userID)
    }

    // MARK: Members

    /// Invites a user; they join only by accepting. So nobody is made a member (let alone an
    /// ADMIN) of an organization they did not choose, and invitations cannot fill anyone's
    /// 25-organization limit: it is checked when they accept.
    func addMember(_ request: MemberRequest, actor: String) async throws -> InvitationRecord {
        let organizationID = try OrganizationRules.id(request.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(request.userId, field: "userId")
        try await requireUserExists(userID)
        return try await storage.invite(organizationID: organizationID, userID: userID, role: request.role, actor: actor, at: now()) {
            actorRole, inviteeRole throws(OrganizationError) in
            try OrganizationRules.mayInvite(actorRole: actorRole, inviteeRole: inviteeRole)
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
        try await storage.invitations(userID: userID)
    }

    func acceptInvitation(_ ref: OrganizationRef, userID: String) async throws -> MembershipRecord {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        let organization = try await storage.acceptInvitation(organizationID: organizationID, userID: userID, at: now()) {
            invitation, count throws(OrganizationError) in
            try OrganizationRules.mayAccept(invitation: invitation, membershipCount: count)
        }
        roles.invalidate()
        return organization
    }

    func declineInvitation(_ ref: OrganizationRef, userID: String) async throws {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        guard try await storage.declineInvitation(organizationID: organizationID, userID: userID, at: now()) != nil else {
            throw OrganizationError.noInvitation
        }
    }

    func changeRole(_ request: MemberRequest, actor: String) async throws -> MemberRecord {
        let organizationID = try OrganizationRules.id(request.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(request.userId, field: "userId")
        let role = request.role
        let member = try await storage.changeRole(organizationID: organizationID, userID: userID, to: role, actor: actor, at: now()) {
            actorRole, member, adminCount throws(OrganizationError) in
            try OrganizationRules.mayChangeRole(actorRole: actorRole, member: member, to: role, adminCount: adminCount)
        }
        roles.invalidate()
        return member
    }

    func removeMember(_ ref: MemberRef, actor: String) async throws {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        let userID = try OrganizationRules.id(ref.userId, field: "userId")
        try await storage.endMembership(organizationID: organizationID, userID: userID, actor: actor, action: "member_removed", at: now()) {
            actorRole, memberRole, adminCount throws(OrganizationError) in
            try OrganizationRules.require(actorRole, in: [.admin])
            try OrganizationRules.mayEndMembership(memberRole: memberRole, adminCount: adminCount)
        }
        roles.invalidate()
    }

    func leave(_ ref: OrganizationRef, userID: String) async throws {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        try await storage.endMembership(organizationID: organizationID, userID: userID, actor: userID, action: "member_left", at: now()) {
            ownRole, _, adminCount throws(OrganizationError) in
            guard ownRole != nil else { throw .notFound }
            try OrganizationRules.mayEndMembership(memberRole: ownRole, adminCount: adminCount)
        }
        roles.invalidate()
    }

    func members(_ ref: OrganizationRef, userID: String) async throws -> [MemberRecord] {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        _ = try await role(organizationID: organizationID, userID: userID, in: Set(Role.allCases))
        return try await storage.members(organizationID: organizationID)
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
        var account = try await storage.billing(organizationID: organizationID)
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
        let linkID = request.linkId
        let contract = request.contract
        return try await storage.setBilling(
            organizationID: organizationID, awsAccountID: account, linkID: linkID, contract: contract, linkedBy: request.linkedBy,
            service: service, at: now()
        ) { exists, current, linkBillsAnother throws(OrganizationError) in
            try OrganizationRules.billingChange(
                organizationExists: exists, current: current, linkID: linkID, contract: contract, linkBillsAnother: linkBillsAnother)
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
        let linkID = request.linkId
        return try await storage.clearBilling(organizationID: organizationID, linkID: linkID, reason: request.reason, service: service, at: now()) {
            exists, current throws(OrganizationError) in
            try OrganizationRules.mayClearBilling(organizationExists: exists, current: current, linkID: linkID)
        }
    }

    func auditEvents(_ ref: OrganizationRef, userID: String) async throws -> [AuditRecord] {
        let organizationID = try OrganizationRules.id(ref.organizationId, field: "organizationId")
        _ = try await role(organizationID: organizationID, userID: userID, in: [.admin])
        return try await storage.auditEvents(organizationID: organizationID, limit: 500)
    }

    // MARK: Authorization

    /// The caller's role if it is one of `allowed`; a non-member gets not-found, another role permission-denied.
    private func role(organizationID: String, userID: String, in allowed: Set<Role>) async throws -> Role {
        guard let role = try await cachedRole(organizationID: organizationID, userID: userID) else { throw OrganizationError.notFound }
        try OrganizationRules.require(role, in: allowed)
        return role
    }

    private func cachedRole(organizationID: String, userID: String) async throws -> Role? {
        try await roles.value(for: MembershipKey(organizationID: organizationID, userID: userID)) { [storage] in
            try await storage.role(organizationID: organizationID, userID: userID)
        }
    }
}
