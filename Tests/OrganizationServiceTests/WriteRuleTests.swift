import Contracts
import Foundation
import Testing

@testable import OrganizationService

/// The rules organization's storage asks inside each write transaction, as plain functions of
/// what the transaction read: no database, no socket.
struct WriteRuleTests {
    private func member(_ role: Role) -> MemberRecord { MemberRecord(userID: "u", role: role, addedAt: Date(timeIntervalSince1970: 0)) }

    @Test func joiningStopsAtTheLimit() throws {
        try OrganizationRules.mayJoin(membershipCount: 24)
        #expect(throws: OrganizationError.tooManyOrganizations(limit: 25)) { try OrganizationRules.mayJoin(membershipCount: 25) }
    }

    @Test func onlyAnAdminInvitesAndOnlyNonMembers() throws {
        try OrganizationRules.mayInvite(actorRole: .admin, inviteeRole: nil)
        #expect(throws: OrganizationError.notFound) { try OrganizationRules.mayInvite(actorRole: nil, inviteeRole: nil) }
        #expect(throws: OrganizationError.roleRequired(["ADMIN"])) { try OrganizationRules.mayInvite(actorRole: .billing, inviteeRole: nil) }
        #expect(throws: OrganizationError.alreadyMember) { try OrganizationRules.mayInvite(actorRole: .admin, inviteeRole: .member) }
    }

    @Test func acceptingNeedsAnInvitationAndRoom() throws {
        let invitation = InvitationRecord(
            organizationID: "o", organizationName: "O", userID: "u", role: .member, invitedBy: "a", invitedAt: Date(timeIntervalSince1970: 0))
        try OrganizationRules.mayAccept(invitation: invitation, membershipCount: 0)
        #expect(throws: OrganizationError.noInvitation) { try OrganizationRules.mayAccept(invitation: nil, membershipCount: 0) }
        #expect(throws: OrganizationError.tooManyOrganizations(limit: 25)) {
            try OrganizationRules.mayAccept(invitation: invitation, membershipCount: 25)
        }
    }

    @Test func roleChangesNeverLeaveAnOrganizationWithoutAnAdmin() throws {
        #expect(try OrganizationRules.mayChangeRole(actorRole: .admin, member: member(.member), to: .billing, adminCount: 1))
        #expect(try !OrganizationRules.mayChangeRole(actorRole: .admin, member: member(.billing), to: .billing, adminCount: 1))
        #expect(try OrganizationRules.mayChangeRole(actorRole: .admin, member: member(.admin), to: .member, adminCount: 2))
        #expect(throws: OrganizationError.lastAdmin) {
            try OrganizationRules.mayChangeRole(actorRole: .admin, member: member(.admin), to: .member, adminCount: 1)
        }
        #expect(throws: OrganizationError.notMember) {
            try OrganizationRules.mayChangeRole(actorRole: .admin, member: nil, to: .member, adminCount: 1)
        }
        #expect(throws: OrganizationError.roleRequired(["ADMIN"])) {
            try OrganizationRules.mayChangeRole(actorRole: .developer, member: member(.member), to: .admin, adminCount: 1)
        }
        try OrganizationRules.mayEndMembership(memberRole: .admin, adminCount: 2)
        #expect(throws: OrganizationError.lastAdmin) { try OrganizationRules.mayEndMembership(memberRole: .admin, adminCount: 1) }
        #expect(throws: OrganizationError.notMember) { try OrganizationRules.mayEndMembership(memberRole: nil, adminCount: 1) }
    }

    @Test func anOrganizationIsBilledThroughOneLinkAndALinkBillsOneOrganization() throws {
        let contract = ContractSummary(productCode: "p", offerId: "o", dimensions: ["seats": "1"])
        let none = BillingRecord(organizationId: "org", provider: .none)
        let billed = BillingRecord(organizationId: "org", provider: .awsMarketplace, awsAccountId: "1", linkId: "link-1", contract: contract)
        let check = { (exists: Bool, current: BillingRecord, link: String, terms: ContractSummary, elsewhere: Bool) in
            try OrganizationRules.billingChange(
                organizationExists: exists, current: current, linkID: link, contract: terms, linkBillsAnother: elsewhere)
        }
        #expect(try check(true, none, "link-1", contract, false) == .set)
        #expect(try check(true, billed, "link-1", contract, false) == .none)
        var amended = contract
        amended.dimensions["seats"] = "2"
        #expect(try check(true, billed, "link-1", amended, false) == .replaceContract)
        #expect(throws: OrganizationError.billedThroughAnotherLink) { try check(true, billed, "link-2", contract, false) }
        #expect(throws: OrganizationError.linkBindsAnotherOrganization) { try check(true, none, "link-1", contract, true) }
        #expect(throws: OrganizationError.notFound) { try check(false, none, "link-1", contract, false) }
        #expect(try OrganizationRules.mayClearBilling(organizationExists: true, current: billed, linkID: "link-1"))
        #expect(try !OrganizationRules.mayClearBilling(organizationExists: true, current: billed, linkID: "link-2"))
    }
}
