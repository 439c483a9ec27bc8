import Foundation
import RPCCore

/// What marketplace-link refuses, in its own words, each with what the person can do about it.
enum MarketplaceLinkError: RPCErrorConvertible, Equatable {
    case invalid(field: String, reason: String)
    case registrationInvalid
    case registrationExpired
    case wrongProduct(String)
    case noActiveEntitlement
    /// AWS Marketplace ended the subscription: `subscribe-fail` or `unsubscribe-success`.
    case subscriptionEnded(String)
    case claimUnknown
    case claimUsed
    case claimExpired
    case emailNotVerified
    case notAdmin
    case notFound
    case billingRoleRequired
    case accountAlreadyLinked
    case organizationAlreadyLinked
    case awsUnavailable(String)
    case organizationUnavailable
    case tooManyRegistrations
    /// RecordUsage while no dimension is metered (`--metered-dimensions`).
    case meteringOff
    case usageTooOld
    /// The organization's usage is not billed through AWS Marketplace now.
    case notMetered(organizationID: String, reason: String)
    case usageKeyReused(String)
    /// The event's hour was already closed and sent (or is being sent) to AWS Marketplace.
    case usageHourClosed(dimension: String, hourStart: Date)
    case usageHourFull(dimension: String)

    var rpcError: RPCError {
        switch self {
        case .invalid(let field, let reason):
            RPCError(.invalidArgument, "\(field) \(reason)")
        case .registrationInvalid:
            RPCError(
                .invalidArgument, "AWS Marketplace does not recognise this registration: in AWS Marketplace, click \"Set up your account\" again")
        case .registrationExpired:
            RPCError(
                .failedPrecondition, "the registration from AWS Marketplace has expired: in AWS Marketplace, click \"Set up your account\" again")
        case .wrongProduct(let product):
            RPCError(
                .failedPrecondition, "this registration is for product \(product), not our committed contract; contact us if you expected otherwise")
        case .noActiveEntitlement:
            RPCError(
                .failedPrecondition,
                "this AWS account has no active entitlement for the committed contract; check the subscription in AWS Marketplace")
        case .subscriptionEnded(let action) where action == "subscribe-fail":
            RPCError(
                .failedPrecondition,
                "AWS Marketplace reports that this subscription failed: subscribe to the offer again in AWS Marketplace, then click \"Set up your account\""
            )
        case .subscriptionEnded:
            RPCError(.failedPrecondition, "this subscription was cancelled in AWS Marketplace: subscribe to the offer again to link it")
        case .claimUnknown:
            RPCError(.notFound, "this registration claim is not valid: in AWS Marketplace, click \"Set up your account\" again")
        case .claimUsed:
            RPCError(.failedPrecondition, "this registration has already been used to link an organization; see the organization's billing page")
        case .claimExpired:
            RPCError(.failedPrecondition, "this registration claim has expired: in AWS Marketplace, click \"Set up your account\" again")
        case .emailNotVerified:
            RPCError(.failedPrecondition, "verify your email address before linking billing")
        case .notAdmin:
            RPCError(
                .permissionDenied, "only an ADMIN of the organization can link its billing; ask an admin, or pick an organization you administer")
        case .notFound:
            RPCError(.notFound, "no such organization, or you are not one of its members")
        case .billingRoleRequired:
            RPCError(.permissionDenied, "only ADMIN or BILLING members of the organization may see its billing")
        case .accountAlreadyLinked:
            RPCError(
                .failedPrecondition, "this AWS account's committed contract is already linked to an organization; one contract links one organization"
            )
        case .organizationAlreadyLinked:
            RPCError(.failedPrecondition, "this organization is already billed through an AWS Marketplace contract; pick another organization")
        case .tooManyRegistrations:
            RPCError(.resourceExhausted, "too many registrations from your address: wait a minute, then click \"Set up your account\" again")
        case .awsUnavailable(let detail):
            RPCError(.unavailable, "AWS Marketplace did not answer (\(detail)); try again in a minute")
        case .organizationUnavailable:
            RPCError(.unavailable, "the organization service did not answer; try again in a minute")
        case .meteringOff:
            RPCError(.failedPrecondition, "no dimension is metered: start marketplace-link with --metered-dimensions")
        case .usageTooOld:
            RPCError(
                .invalidArgument, "an event's occurredAt is too old: AWS Marketplace takes usage for at most 6 hours, report usage as it happens")
        case .notMetered(let organizationID, let reason):
            RPCError(.failedPrecondition, "organization \(organizationID) \(reason): its usage cannot be recorded")
        case .usageKeyReused(let key):
            RPCError(.alreadyExists, "idempotency key '\(key)' was used for another event: give each event a key of its own")
        case .usageHourClosed(let dimension, let hourStart):
            RPCError(
                .failedPrecondition,
                "the usage of \(dimension) for the hour from \(hourStart.formatted(.iso8601)) was already sent to AWS Marketplace: report usage within the hour"
            )
        case .usageHourFull(let dimension):
            RPCError(.invalidArgument, "the usage of \(dimension) in one hour would pass 2,147,483,647, the most AWS Marketplace takes")
        }
    }
}
