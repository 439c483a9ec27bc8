import Foundation
import RPCCore

/// `marketplacelink.v1.MarketplaceLinkService` (proto/marketplacelink/v1/marketplace_link.proto):
/// AWS Marketplace registrations, the binding of a contract to an organization, billing status.
public enum MarketplaceLink {
    static let service = "marketplacelink.v1.MarketplaceLinkService"

    /// Called by the web front with the token AWS POSTed to the fulfillment URL.
    public static let acceptRegistration = RPCMethod<AcceptRegistrationRequest, AcceptRegistrationResponse>(
        service: service, name: "AcceptRegistration")
    public static let getClaim = RPCMethod<ClaimRequest, ClaimStatus>(service: service, name: "GetClaim")
    /// Needs the user's access token; the user must be a verified ADMIN of the organization.
    public static let bindOrganization = RPCMethod<BindOrganizationRequest, BillingStatus>(service: service, name: "BindOrganization")
    /// Needs the user's access token; ADMIN or BILLING of the organization.
    public static let getBillingStatus = RPCMethod<BillingStatusRequest, BillingStatus>(service: service, name: "GetBillingStatus")
    public static let listLinks = RPCMethod<ListLinksRequest, LinkList>(
        service: service, name: "ListLinks",
        access: .internalOnly(callers: [ServiceNames.console, ServiceNames.operator]))
    /// The product's data plane reports usage; internal-only.
    public static let recordUsage = RPCMethod<RecordUsageRequest, RecordUsageResponse>(
        service: service, name: "RecordUsage",
        access: .internalOnly(callers: [ServiceNames.usageReporter, ServiceNames.operator]))
    /// Needs the user's access token; ADMIN or BILLING of the organization.
    public static let getUsage = RPCMethod<GetUsageRequest, UsageReport>(service: service, name: "GetUsage")
}

public struct AcceptRegistrationRequest: RPCMessage, Equatable {
    /// `x-amzn-marketplace-token` as AWS posted it. Never stored or logged.
    public var registrationToken: String
    public init(registrationToken: String) { self.registrationToken = registrationToken }
}

/// What the buyer bought, as shown before and after binding.
public struct OfferSummary: RPCMessage, Equatable {
    public var productCode: String
    /// The AWS account, all but the last four digits masked.
    public var awsAccountId: String
    /// The agreement (license) the entitlements belong to.
    public var licenseArn: String?
    /// Entitlement dimensions and their values.
    public var entitlements: [String: String]
    public var contractEndsAt: Date?
    public init(productCode: String, awsAccountId: String, licenseArn: String?, entitlements: [String: String], contractEndsAt: Date?) {
        self.productCode = productCode
        self.awsAccountId = awsAccountId
        self.licenseArn = licenseArn
        self.entitlements = entitlements
        self.contractEndsAt = contractEndsAt
    }
}

public struct AcceptRegistrationResponse: RPCMessage, Equatable {
    /// One-time secret to bind with; absent when the contract is already linked.
    public var claim: String?
    public var claimExpiresAt: Date?
    public var offer: OfferSummary
    /// True when this AWS account's contract is already bound to an organization.
    public var alreadyLinked: Bool
    /// That organization's name, only for a caller who is one of its members.
    public var linkedOrganizationName: String?
    public init(claim: String?, claimExpiresAt: Date?, offer: OfferSummary, alreadyLinked: Bool, linkedOrganizationName: String? = nil) {
        self.claim = claim
        self.claimExpiresAt = claimExpiresAt
        self.offer = offer
        self.alreadyLinked = alreadyLinked
        self.linkedOrganizationName = linkedOrganizationName
    }
}

public struct ClaimRequest: RPCMessage, Equatable {
    public var claim: String
    public init(claim: String) { self.claim = claim }
}

/// A registration's state as its claim shows it.
public enum ClaimState: String, Codable, Sendable {
    case pending = "PENDING"
    case bound = "BOUND"
    case expired = "EXPIRED"
    /// AWS Marketplace ended the subscription (subscribe-fail or unsubscribe-success).
    case ended = "ENDED"
}

public struct ClaimStatus: RPCMessage, Equatable {
    public var state: ClaimState
    public var offer: OfferSummary
    public var expiresAt: Date
    public init(state: ClaimState, offer: OfferSummary, expiresAt: Date) {
        self.state = state
        self.offer = offer
        self.expiresAt = expiresAt
    }
}

public struct BindOrganizationRequest: RPCMessage, Equatable {
    public var claim: String
    public var organizationId: String
    public init(claim: String, organizationId: String) {
        self.claim = claim
        self.organizationId = organizationId
    }
}

public struct BillingStatusRequest: RPCMessage, Equatable {
    public var organizationId: String
    public init(organizationId: String) { self.organizationId = organizationId }
}

/// A link's life: BINDING until organization confirms the billing account, then ACTIVE.
public enum LinkState: String, Codable, Sendable {
    case binding = "BINDING"
    case active = "ACTIVE"
    case unsubscribePending = "UNSUBSCRIBE_PENDING"
    case cancelled = "CANCELLED"
    case failed = "FAILED"
}

public struct BillingStatus: RPCMessage, Equatable {
    public var organizationId: String
    /// `AWS_MARKETPLACE`, or `NONE` when the organization has no marketplace link.
    public var provider: String
    public var linkId: String?
    public var state: LinkState?
    public var offer: OfferSummary?
    public var linkedBy: String?
    public var linkedAt: Date?
    /// Why a binding failed, when it did.
    public var failureReason: String?
    public init(
        organizationId: String, provider: String, linkId: String? = nil, state: LinkState? = nil, offer: OfferSummary? = nil,
        linkedBy: String? = nil, linkedAt: Date? = nil, failureReason: String? = nil
    ) {
        self.organizationId = organizationId
        self.provider = provider
        self.linkId = linkId
        self.state = state
        self.offer = offer
        self.linkedBy = linkedBy
        self.linkedAt = linkedAt
        self.failureReason = failureReason
    }
}

public struct ListLinksRequest: RPCMessage, Equatable {
    /// Only links in this state, when given.
    public var state: LinkState?
    public init(state: LinkState? = nil) { self.state = state }
}

public struct LinkList: RPCMessage, Equatable {
    public var links: [BillingStatus]
    public init(links: [BillingStatus]) { self.links = links }
}

/// One usage event of the product's data plane.
public struct UsageEvent: RPCMessage, Equatable {
    /// Unique per event and organization: a retry with the same key counts once.
    public var idempotencyKey: String
    public var organizationId: String
    /// One of the product's metered dimensions (marketplace-link's `--metered-dimensions`).
    public var dimension: String
    public var quantity: Int32
    /// When the usage happened; it is billed in that UTC hour.
    public var occurredAt: Date
    public init(idempotencyKey: String, organizationId: String, dimension: String, quantity: Int32, occurredAt: Date) {
        self.idempotencyKey = idempotencyKey
        self.organizationId = organizationId
        self.dimension = dimension
        self.quantity = quantity
        self.occurredAt = occurredAt
    }
}

public struct RecordUsageRequest: RPCMessage, Equatable {
    /// 1 to 1000 events, taken all or none.
    public var events: [UsageEvent]
    public init(events: [UsageEvent]) { self.events = events }
}

public struct RecordUsageResponse: RPCMessage, Equatable {
    /// Events recorded now.
    public var accepted: Int32
    /// Events recorded before under the same keys (retries), counted once.
    public var duplicates: Int32
    public init(accepted: Int32, duplicates: Int32) {
        self.accepted = accepted
        self.duplicates = duplicates
    }
}

public struct GetUsageRequest: RPCMessage, Equatable {
    public var organizationId: String
    public init(organizationId: String) { self.organizationId = organizationId }
}

/// Where an hour's usage is on its way to AWS Marketplace.
public enum MeteringState: String, Codable, Sendable, CaseIterable {
    /// Still taking events.
    case open = "OPEN"
    /// Closed and stored as the record to send; being sent.
    case frozen = "FROZEN"
    /// AWS Marketplace accepted it (`meteringRecordId`).
    case sent = "SENT"
    /// AWS Marketplace says the customer is not subscribed: not billed.
    case notSubscribed = "NOT_SUBSCRIBED"
    /// AWS Marketplace had another quantity for this hour already: not billed, an error of ours.
    case duplicate = "DUPLICATE"
    /// AWS Marketplace refused the record (`detail` says why).
    case refused = "REFUSED"
    /// Not sent within AWS Marketplace's 6 hours: kept, not billed.
    case expired = "EXPIRED"
}

public struct UsageHour: RPCMessage, Equatable {
    public var dimension: String
    /// The start of the UTC hour (of the metering period, when shortened for tests).
    public var hourStart: Date
    public var quantity: Int64
    public var state: MeteringState
    public var meteringRecordId: String?
    public var detail: String?
    public init(dimension: String, hourStart: Date, quantity: Int64, state: MeteringState, meteringRecordId: String?, detail: String?) {
        self.dimension = dimension
        self.hourStart = hourStart
        self.quantity = quantity
        self.state = state
        self.meteringRecordId = meteringRecordId
        self.detail = detail
    }
}

public struct DimensionUsage: RPCMessage, Equatable {
    public var dimension: String
    /// Every event this month.
    public var quantity: Int64
    /// What AWS Marketplace accepted so far.
    public var sentQuantity: Int64
    public init(dimension: String, quantity: Int64, sentQuantity: Int64) {
        self.dimension = dimension
        self.quantity = quantity
        self.sentQuantity = sentQuantity
    }
}

/// An organization's usage this month (UTC): per dimension, and per hour with its metering state.
public struct UsageReport: RPCMessage, Equatable {
    public var organizationId: String
    public var monthStart: Date
    public var dimensions: [DimensionUsage]
    /// Newest hour first.
    public var hours: [UsageHour]
    public init(organizationId: String, monthStart: Date, dimensions: [DimensionUsage], hours: [UsageHour]) {
        self.organizationId = organizationId
        self.monthStart = monthStart
        self.dimensions = dimensions
        self.hours = hours
    }
}
