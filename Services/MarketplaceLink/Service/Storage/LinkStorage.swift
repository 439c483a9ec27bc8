import AWSMarketplace
import Contracts
import Foundation

/// marketplace-link's storage, the same behaviour on either backend (`SQLiteLinkStorage`,
/// `PostgresLinkStorage`): registrations and their claims, links and the saga steps they owe,
/// and the Amazon SNS messages taken. Each write is one transaction; the rules it applies are
/// the domain's (`ClaimRules`, `LinkLifecycle`, `SubscriptionLifecycle`), asked inside it.
///
/// Background work (saga steps, entitlement refreshes) is taken with a lease: a worker that
/// takes an item owns it until the lease ends or it records the outcome, so with several
/// replicas each item is worked by one at a time, and one that dies mid-step leaves the item to
/// another once its lease has run out.
protocol LinkStorage: Sendable {
    typealias Registration = LinkStore.Registration
    typealias Link = LinkStore.Link

    // MARK: Registrations

    func registration(claimHash: String) async throws -> Registration?
    /// The organization this account's contract is bound to, if a live link exists.
    func liveOrganization(awsAccountID: String, productCode: String) async throws -> String?
    /// Keeps one pending registration per (AWS account, product), a new claim replacing the old,
    /// and applies the subscription events that arrived before it; returns it as they leave it.
    func register(offer: OfferRecord, customerIdentifier: String, claimHash: String, claimExpiresAt: Date, at: Date) async throws -> Registration

    // MARK: Links and the binding saga

    func link(id: String) async throws -> Link?
    /// The organization's live link, else its most recent one.
    func latestLink(organizationID: String) async throws -> Link?
    func links(state: LinkState?, limit: Int) async throws -> [Link]
    /// Records the intent (BINDING, owing SET_BILLING) and uses up the claim, if `usable` accepts
    /// the claim's registration as this transaction sees it. One live link per account and per
    /// organization, whatever runs concurrently.
    func recordBinding(
        claimHash: String, organizationID: String, userID: String, at: Date,
        usable: @Sendable (Registration?) throws(MarketplaceLinkError) -> Registration
    ) async throws -> LinkStore.BindingRecord
    /// Links whose owed step is due at `at` and not leased to a worker.
    func dueSteps(at: Date) async throws -> [LinkStore.DueStep]
    /// The link, its owed step leased to the caller until `until`; nil when it owes none or
    /// another worker holds the lease.
    func leaseStep(linkID: String, at: Date, until: Date) async throws -> Link?
    /// Applies a step's outcome as `LinkLifecycle` rules it and ends the lease.
    func record(_ outcome: LinkStore.Outcome, of step: LinkLifecycle.Step, linkID: String, at: Date) async throws

    // MARK: Amazon SNS messages

    func isMessageRecorded(messageID: String) async throws -> Bool
    /// Records a message that changes nothing (confirmations, messages ignored); false if its
    /// MessageId was taken already. `confirmedTopic`: the subscription to that topic was confirmed.
    func recordMessage(
        _ message: SNSMessage, state: NotificationStore.State, detail: String, confirmedTopic: Bool, at: Date
    ) async throws -> Bool
    /// Records a subscription event and applies it to its customer's registration, if there is
    /// one yet (else it waits for it); nil if its MessageId was taken already.
    func applyEvent(_ event: MarketplaceSubscriptionEvent, of message: SNSMessage, productCode: String, at: Date) async throws
        -> SubscriptionLifecycle.Effect?
    /// entitlement-updated events whose entitlements are due to be fetched, leased to the caller until `until`.
    func leaseDueRefreshes(at: Date, until: Date) async throws -> [NotificationStore.Refresh]
    /// The fetched entitlements applied to the registration and its live link; the refresh done.
    func completeRefresh(_ refresh: NotificationStore.Refresh, entitlements: [Entitlement], at: Date) async throws
    func postponeRefresh(messageID: String, until: Date, error: String) async throws

    // MARK: Usage metering

    /// Records the events in one transaction, all or none: each is a retry (counted once), or its
    /// organization's link takes it and it is added to its (link, dimension, hour) while that
    /// hour is OPEN, as `admission` rules. Throws the first refusal.
    func recordUsage(_ events: [UsageEventRecord], admission: UsageAdmission, at: Date) async throws -> (accepted: Int, duplicates: Int)
    /// Closes every OPEN hour whose time has come (its hour and grace are over, or its link
    /// ended): from now on it is exactly the record sent. Returns how many.
    func freezeUsageHours(at: Date) async throws -> Int
    /// Frozen hours due to be sent, leased to the caller until `until`.
    func leaseFrozenHours(at: Date, until: Date, limit: Int) async throws -> [UsageHourRecord]
    /// Stores what became of sent hours and ends their leases; CustomerNotSubscribed also stops
    /// the link's metering (RecordUsage refuses it from then on).
    func recordMeteringOutcomes(_ outcomes: [(hour: UsageHourRecord, outcome: MeteringOutcome)], at: Date) async throws
    /// When the meter next has work: the earliest OPEN hour to close, or FROZEN hour due to be
    /// sent (its retry time, or the end of another worker's lease); nil when there is none.
    func nextMeteringDue() async throws -> Date?
    /// The organization's hours from `since`, every link's.
    func usageHours(organizationID: String, since: Date) async throws -> [UsageHourRecord]
}
