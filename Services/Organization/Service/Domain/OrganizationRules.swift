import Contracts
import Foundation
import RPCCore

/// organization's rules as plain values.
enum OrganizationRules {
    /// How many organizations one user may belong to.
    static let maxOrganizationsPerUser = 25

    /// Trimmed, 2 to 64 characters, no control characters.
    static func name(_ text: String) throws(OrganizationError) -> String {
        let trimmed = text.utf8.count <= 64 * 8 ? text.trimmingCharacters(in: .whitespacesAndNewlines) : text
        guard TextLength.isWithin(trimmed, characters: 2...64) else {
            throw .invalid(field: "name", reason: "must be 2 to 64 characters long (after trimming spaces)")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalid(field: "name", reason: "must not contain control characters")
        }
        return trimmed
    }

    /// An id as identity and organization make them: 1 to 64 of a-z, 0-9 and '-'.
    static func id(_ text: String, field: String) throws(OrganizationError) -> String {
        guard !text.isEmpty else { throw .invalid(field: field, reason: "is required") }
        guard text.utf8.count <= 64, text.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else {
            throw .invalid(field: field, reason: "is not a valid id (lowercase letters, digits and '-', at most 64)")
        }
        return text
    }

    /// An `idempotency-key` header value: 1 to 128 printable ASCII characters.
    static func idempotencyKey(_ text: String) throws(OrganizationError) -> String {
        guard (1...128).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw .invalid(field: "idempotency-key header", reason: "must be 1 to 128 printable ASCII characters")
        }
        return text
    }

    /// Whether `role` may do what needs one of `allowed`; throws the refusal otherwise.
    static func require(_ role: Role, in allowed: Set<Role>) throws(OrganizationError) {
        guard allowed.contains(role) else { throw .roleRequired(Role.allCases.filter(allowed.contains).map(\.rawValue)) }
    }

    /// Who may read the billing account (here, and for marketplace-link and the console through
    /// `canReadBilling`: the one place this rule lives).
    static let billingReaders: Set<Role> = [.admin, .billing]
    /// Who may link billing (bind a marketplace contract).
    static let billingLinkers: Set<Role> = [.admin]

    /// A 12-digit AWS account id.
    static func awsAccountID(_ text: String) throws(OrganizationError) -> String {
        guard text.utf8.count == 12, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalid(field: "awsAccountId", reason: "must be the 12 digits of an AWS account id")
        }
        return text
    }

    // MARK: The rules that guard writes, on the facts the write's transaction read

    /// Joining (creating or accepting): below the membership limit.
    static func mayJoin(membershipCount: Int) throws(OrganizationError) {
        guard membershipCount < maxOrganizationsPerUser else { throw .tooManyOrganizations(limit: maxOrganizationsPerUser) }
    }

    /// A member's role among `allowed`; a non-member (or no such organization) is not found.
    static func require(_ role: Role?, in allowed: Set<Role>) throws(OrganizationError) {
        guard let role else { throw .notFound }
        try require(role, in: allowed)
    }

    /// Inviting: by an admin, of somebody not yet a member.
    static func mayInvite(actorRole: Role?, inviteeRole: Role?) throws(OrganizationError) {
        try require(actorRole, in: [.admin])
        guard inviteeRole == nil else { throw .alreadyMember }
    }

    /// Accepting: an invitation there is, and room below the limit.
    static func mayAccept(invitation: InvitationRecord?, membershipCount: Int) throws(OrganizationError) {
        guard invitation != nil else { throw .noInvitation }
        try mayJoin(membershipCount: membershipCount)
    }

    /// Changing a role, by an admin, never leaving the organization without one; false when the
    /// member has that role already (nothing to write).
    static func mayChangeRole(actorRole: Role?, member: MemberRecord?, to role: Role, adminCount: Int) throws(OrganizationError) -> Bool {
        try require(actorRole, in: [.admin])
        guard let member else { throw .notMember }
        if member.role == role { return false }
        if member.role == .admin, adminCount <= 1 { throw .lastAdmin }
        return true
    }

    /// Ending a membership (removed or left), never the last admin's.
    static func mayEndMembership(memberRole: Role?, adminCount: Int) throws(OrganizationError) {
        guard let memberRole else { throw .notMember }
        if memberRole == .admin, adminCount <= 1 { throw .lastAdmin }
    }

    /// What setting an organization's billing account does.
    enum BillingChange: Equatable {
        /// A retry of what is set already.
        case none
        /// The same link with a new contract (the buyer's entitlements changed).
        case replaceContract
        /// The organization's first billing account.
        case set
    }

    /// Setting billing through `linkID`: an organization billed through another link, or a link
    /// that bills another organization, is refused.
    static func billingChange(
        organizationExists: Bool, current: BillingRecord, linkID: String, contract: ContractSummary, linkBillsAnother: Bool
    ) throws(OrganizationError) -> BillingChange {
        guard organizationExists else { throw .notFound }
        if current.provider == .awsMarketplace {
            guard current.linkId == linkID else { throw .billedThroughAnotherLink }
            return current.contract == contract ? .none : .replaceContract
        }
        guard !linkBillsAnother else { throw .linkBindsAnotherOrganization }
        return .set
    }

    /// Clearing: only the link that set it clears it; clearing again is a retry (false: nothing to do).
    static func mayClearBilling(organizationExists: Bool, current: BillingRecord, linkID: String) throws(OrganizationError) -> Bool {
        guard organizationExists else { throw .notFound }
        return current.linkId == linkID
    }
}
