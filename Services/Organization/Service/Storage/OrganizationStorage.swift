import Contracts
import Foundation

/// organization's storage, the same behaviour on either backend (`SQLiteOrganizationStorage`,
/// `PostgresOrganizationStorage`): its reads, and each write as one transaction that reads the
/// facts its rule needs, asks the rule (a pure function of `OrganizationRules`, passed in as
/// `check`), and writes what the rule allows. Each backend makes that safe against concurrent
/// writers in its own way, said where it does so. Writes that change memberships tell the other
/// replicas, whose role caches `rolesChanged` clears.
protocol OrganizationStorage: Sendable {
    func views(userID: String) async throws -> [MembershipRecord]
    func view(organizationID: String, userID: String) async throws -> MembershipRecord?
    func selectedView(userID: String) async throws -> MembershipRecord?
    func invitations(userID: String) async throws -> [InvitationRecord]
    func members(organizationID: String) async throws -> [MemberRecord]
    func role(organizationID: String, userID: String) async throws -> Role?
    func billing(organizationID: String) async throws -> BillingRecord
    func auditEvents(organizationID: String, limit: Int) async throws -> [AuditRecord]

    /// A new organization with its creator as ADMIN, or the one `idempotencyKey` made before.
    func createOrganization(
        id: String, name: String, userID: String, idempotencyKey: String?, at: Date,
        check: @Sendable (_ membershipCount: Int) throws(OrganizationError) -> Void
    ) async throws -> MembershipRecord

    /// Makes or renews an invitation (a re-invitation takes the new role).
    func invite(
        organizationID: String, userID: String, role: Role, actor: String, at: Date,
        check: @Sendable (_ actorRole: Role?, _ inviteeRole: Role?) throws(OrganizationError) -> Void
    ) async throws -> InvitationRecord

    /// Makes the invitee a member; a member already (a retry) gets their membership, nothing written.
    func acceptInvitation(
        organizationID: String, userID: String, at: Date,
        check: @Sendable (_ invitation: InvitationRecord?, _ membershipCount: Int) throws(OrganizationError) -> Void
    ) async throws -> MembershipRecord

    /// Deletes the invitation; nil when there was none (nothing written).
    func declineInvitation(organizationID: String, userID: String, at: Date) async throws -> InvitationRecord?

    /// `check` says whether there is anything to change.
    func changeRole(
        organizationID: String, userID: String, to role: Role, actor: String, at: Date,
        check: @Sendable (_ actorRole: Role?, _ member: MemberRecord?, _ adminCount: Int) throws(OrganizationError) -> Bool
    ) async throws -> MemberRecord

    /// Ends a membership (and the user's selection of that organization); `action` names it in the audit.
    func endMembership(
        organizationID: String, userID: String, actor: String, action: String, at: Date,
        check: @Sendable (_ actorRole: Role?, _ memberRole: Role?, _ adminCount: Int) throws(OrganizationError) -> Void
    ) async throws

    /// Makes it the user's selected organization; nil when they are not a member (nothing written).
    func select(organizationID: String, userID: String) async throws -> MembershipRecord?

    func setBilling(
        organizationID: String, awsAccountID: String, linkID: String, contract: ContractSummary, linkedBy: String?, service: String, at: Date,
        check:
            @Sendable (_ organizationExists: Bool, _ current: BillingRecord, _ linkBillsAnother: Bool) throws(OrganizationError) ->
            OrganizationRules.BillingChange
    ) async throws -> BillingRecord

    /// `check` says whether to clear.
    func clearBilling(
        organizationID: String, linkID: String, reason: String, service: String, at: Date,
        check: @Sendable (_ organizationExists: Bool, _ current: BillingRecord) throws(OrganizationError) -> Bool
    ) async throws -> BillingRecord
}
