import Contracts
import Foundation
import ServiceRuntime

// What organization's storage answers with, whichever backend holds the rows.

/// An organization and a member's role in it.
struct MembershipRecord: DatabaseRecord, Sendable, Equatable {
    var id: String
    var name: String
    var createdAt: Date
    var role: Role
}

struct InvitationRecord: DatabaseRecord, Sendable, Equatable {
    var organizationID: String
    var organizationName: String
    var userID: String
    var role: Role
    var invitedBy: String
    var invitedAt: Date
}

struct MemberRecord: DatabaseRecord, Sendable, Equatable {
    var userID: String
    var role: Role
    var addedAt: Date
}

/// How an organization pays; nil fields when it has no billing account.
struct BillingRecord: Sendable, Equatable {
    var organizationId: String
    var provider: BillingProvider
    var awsAccountId: String?
    var linkId: String?
    /// As marketplace-link sent it (stored as JSON).
    var contract: ContractSummary?
    var updatedAt: Date?
}

struct AuditRecord: DatabaseRecord, Sendable, Equatable {
    var action: String
    var actor: String
    var subjectUserID: String?
    var detail: String?
    var at: Date
}
