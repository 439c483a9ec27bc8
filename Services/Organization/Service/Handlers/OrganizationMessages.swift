import Contracts

/// The wire messages of the records the use cases answer with, built here in the handlers layer,
/// with organization's rule sets (who may read and who may link billing) applied once.
extension MembershipRecord {
    var message: Organization {
        Organization(
            id: id, name: name, createdAt: createdAt, role: role, canLinkBilling: OrganizationRules.billingLinkers.contains(role),
            canReadBilling: OrganizationRules.billingReaders.contains(role))
    }
}

extension InvitationRecord {
    var message: Invitation {
        Invitation(
            organizationId: organizationID, organizationName: organizationName, userId: userID, role: role, invitedBy: invitedBy,
            invitedAt: invitedAt)
    }
}

extension MemberRecord {
    var message: Member { Member(userId: userID, role: role, addedAt: addedAt) }
}

extension BillingRecord {
    /// As marketplace-link (a service) sees it: the whole AWS account id.
    var message: BillingAccount {
        BillingAccount(
            organizationId: organizationId, provider: provider, awsAccountId: awsAccountId, linkId: linkId, contract: contract,
            updatedAt: updatedAt)
    }
}

extension AuditRecord {
    var message: AuditEvent { AuditEvent(action: action, actor: actor, subjectUserId: subjectUserID, detail: detail, at: at) }
}

extension CheckAdminResponse {
    /// What organization tells other services of a user's `role` (nil: not a member).
    init(role: Role?) {
        self.init(isAdmin: role == .admin, role: role, canReadBilling: role.map(OrganizationRules.billingReaders.contains) ?? false)
    }
}
