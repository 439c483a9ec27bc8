import Foundation
import RPCCore

/// `organization.v1.OrganizationService` (proto/organization/v1/organization.proto): organizations,
/// memberships and roles, admin checks, and each organization's billing account record.
/// Every public method needs the user's access token.
public enum Organizations {
    static let service = "organization.v1.OrganizationService"

    /// A retried create with the same `idempotency-key` header returns the first result.
    public static let createOrganization = RPCMethod<CreateOrganizationRequest, Organization>(service: service, name: "CreateOrganization")
    public static let listMyOrganizations = RPCMethod<Empty, OrganizationList>(service: service, name: "ListMyOrganizations")
    public static let getOrganization = RPCMethod<OrganizationRef, Organization>(service: service, name: "GetOrganization")
    public static let selectOrganization = RPCMethod<OrganizationRef, Organization>(service: service, name: "SelectOrganization")
    public static let getSelectedOrganization = RPCMethod<Empty, SelectedOrganization>(service: service, name: "GetSelectedOrganization")
    /// Invites a user: they become a member only once they accept (AcceptInvitation). An
    /// invitation grants nothing and does not count against the invitee's organization limit.
    public static let addMember = RPCMethod<MemberRequest, Invitation>(service: service, name: "AddMember")
    /// The caller's pending invitations.
    public static let listMyInvitations = RPCMethod<Empty, InvitationList>(service: service, name: "ListMyInvitations")
    /// Joins the organization in the role the invitation names (within the 25-organization limit);
    /// a member accepting again (a retry after a lost answer) gets the organization, unchanged.
    public static let acceptInvitation = RPCMethod<OrganizationRef, Organization>(service: service, name: "AcceptInvitation")
    public static let declineInvitation = RPCMethod<OrganizationRef, Empty>(service: service, name: "DeclineInvitation")
    public static let changeMemberRole = RPCMethod<MemberRequest, Member>(service: service, name: "ChangeMemberRole")
    public static let removeMember = RPCMethod<MemberRef, Empty>(service: service, name: "RemoveMember")
    public static let leaveOrganization = RPCMethod<OrganizationRef, Empty>(service: service, name: "LeaveOrganization")
    public static let listMembers = RPCMethod<OrganizationRef, MemberList>(service: service, name: "ListMembers")
    public static let checkAdmin = RPCMethod<MemberRef, CheckAdminResponse>(
        service: service, name: "CheckAdmin",
        access: .internalOnly(callers: [ServiceNames.marketplaceLink, ServiceNames.console]))
    public static let getBillingAccount = RPCMethod<OrganizationRef, BillingAccount>(service: service, name: "GetBillingAccount")
    public static let setBillingAccount = RPCMethod<SetBillingAccountRequest, BillingAccount>(
        service: service, name: "SetBillingAccount", access: .internalOnly(callers: [ServiceNames.marketplaceLink]))
    public static let clearBillingAccount = RPCMethod<ClearBillingAccountRequest, BillingAccount>(
        service: service, name: "ClearBillingAccount", access: .internalOnly(callers: [ServiceNames.marketplaceLink]))
    public static let listAuditEvents = RPCMethod<OrganizationRef, AuditEventList>(service: service, name: "ListAuditEvents")

    /// The request header that makes CreateOrganization idempotent.
    public static let idempotencyKeyHeader = "idempotency-key"
}

/// A member's role in an organization.
public enum Role: String, Codable, Sendable, CaseIterable {
    case admin = "ADMIN"
    case developer = "DEVELOPER"
    case billing = "BILLING"
    case member = "MEMBER"
}

public struct CreateOrganizationRequest: RPCMessage, Equatable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct OrganizationRef: RPCMessage, Equatable {
    public var organizationId: String
    public init(organizationId: String) { self.organizationId = organizationId }
}

/// An organization as one of its members sees it.
public struct Organization: RPCMessage, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    /// The caller's role.
    public var role: Role
    /// Whether the caller may link billing (bind a marketplace contract): organization's rule.
    public var canLinkBilling: Bool
    /// Whether the caller may see the billing account and its status: organization's rule.
    public var canReadBilling: Bool
    public init(id: String, name: String, createdAt: Date, role: Role, canLinkBilling: Bool, canReadBilling: Bool) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.role = role
        self.canLinkBilling = canLinkBilling
        self.canReadBilling = canReadBilling
    }
}

public struct OrganizationList: RPCMessage, Equatable {
    public var organizations: [Organization]
    public init(organizations: [Organization]) { self.organizations = organizations }
}

public struct SelectedOrganization: RPCMessage, Equatable {
    /// Absent until the user selects one (or after they leave it).
    public var organization: Organization?
    public init(organization: Organization?) { self.organization = organization }
}

public struct MemberRequest: RPCMessage, Equatable {
    public var organizationId: String
    public var userId: String
    public var role: Role
    public init(organizationId: String, userId: String, role: Role) {
        self.organizationId = organizationId
        self.userId = userId
        self.role = role
    }
}

public struct MemberRef: RPCMessage, Equatable {
    public var organizationId: String
    public var userId: String
    public init(organizationId: String, userId: String) {
        self.organizationId = organizationId
        self.userId = userId
    }
}

public struct Member: RPCMessage, Equatable {
    public var userId: String
    public var role: Role
    public var addedAt: Date
    public init(userId: String, role: Role, addedAt: Date) {
        self.userId = userId
        self.role = role
        self.addedAt = addedAt
    }
}

/// An invitation to join an organization, as the admin who made it and the invitee see it.
public struct Invitation: RPCMessage, Equatable {
    public var organizationId: String
    public var organizationName: String
    public var userId: String
    public var role: Role
    public var invitedBy: String
    public var invitedAt: Date
    public init(organizationId: String, organizationName: String, userId: String, role: Role, invitedBy: String, invitedAt: Date) {
        self.organizationId = organizationId
        self.organizationName = organizationName
        self.userId = userId
        self.role = role
        self.invitedBy = invitedBy
        self.invitedAt = invitedAt
    }
}

public struct InvitationList: RPCMessage, Equatable {
    public var invitations: [Invitation]
    public init(invitations: [Invitation]) { self.invitations = invitations }
}

public struct MemberList: RPCMessage, Equatable {
    public var members: [Member]
    public init(members: [Member]) { self.members = members }
}

public struct CheckAdminResponse: RPCMessage, Equatable {
    public var isAdmin: Bool
    /// Absent when the user is not a member (or the organization does not exist).
    public var role: Role?
    /// Whether the user may see the billing account and its status: organization's rule, so
    /// other services need not know which roles that is.
    public var canReadBilling: Bool
    public init(isAdmin: Bool, role: Role?, canReadBilling: Bool) {
        self.isAdmin = isAdmin
        self.role = role
        self.canReadBilling = canReadBilling
    }
}

/// How an organization pays.
public enum BillingProvider: String, Codable, Sendable {
    case none = "NONE"
    case awsMarketplace = "AWS_MARKETPLACE"
}

/// What was bought through the marketplace, as marketplace-link describes it.
public struct ContractSummary: RPCMessage, Equatable {
    public var productCode: String
    public var offerId: String
    /// Entitlement dimensions and their values, e.g. `{"committed_spend_usd": "100000"}`.
    public var dimensions: [String: String]
    public var endsAt: Date?
    public init(productCode: String, offerId: String, dimensions: [String: String] = [:], endsAt: Date? = nil) {
        self.productCode = productCode
        self.offerId = offerId
        self.dimensions = dimensions
        self.endsAt = endsAt
    }
}

public struct BillingAccount: RPCMessage, Equatable {
    public var organizationId: String
    public var provider: BillingProvider
    public var awsAccountId: String?
    public var linkId: String?
    public var contract: ContractSummary?
    public var updatedAt: Date?
    public init(
        organizationId: String, provider: BillingProvider, awsAccountId: String? = nil, linkId: String? = nil,
        contract: ContractSummary? = nil, updatedAt: Date? = nil
    ) {
        self.organizationId = organizationId
        self.provider = provider
        self.awsAccountId = awsAccountId
        self.linkId = linkId
        self.contract = contract
        self.updatedAt = updatedAt
    }
}

public struct SetBillingAccountRequest: RPCMessage, Equatable {
    public var organizationId: String
    public var provider: BillingProvider
    public var awsAccountId: String
    /// marketplace-link's id for the binding; setting the same link again changes nothing.
    public var linkId: String
    public var contract: ContractSummary
    /// The user who linked it, for the audit trail.
    public var linkedBy: String?
    public init(
        organizationId: String, provider: BillingProvider, awsAccountId: String, linkId: String,
        contract: ContractSummary, linkedBy: String? = nil
    ) {
        self.organizationId = organizationId
        self.provider = provider
        self.awsAccountId = awsAccountId
        self.linkId = linkId
        self.contract = contract
        self.linkedBy = linkedBy
    }
}

public struct ClearBillingAccountRequest: RPCMessage, Equatable {
    public var organizationId: String
    public var linkId: String
    public var reason: String
    public init(organizationId: String, linkId: String, reason: String) {
        self.organizationId = organizationId
        self.linkId = linkId
        self.reason = reason
    }
}

public struct AuditEvent: RPCMessage, Equatable {
    /// `organization_created`, `member_added`, `member_removed`, `member_left`, `role_changed`,
    /// `billing_set`, `billing_updated`, `billing_cleared`.
    public var action: String
    /// A user id, or `service:<name>` for a calling service.
    public var actor: String
    public var subjectUserId: String?
    public var detail: String?
    public var at: Date
    public init(action: String, actor: String, subjectUserId: String?, detail: String?, at: Date) {
        self.action = action
        self.actor = actor
        self.subjectUserId = subjectUserId
        self.detail = detail
        self.at = at
    }
}

public struct AuditEventList: RPCMessage, Equatable {
    public var events: [AuditEvent]
    public init(events: [AuditEvent]) { self.events = events }
}
