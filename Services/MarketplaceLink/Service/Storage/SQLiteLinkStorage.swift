import AWSMarketplace
import ConnectTransport
import Contracts
import Foundation
import GRDB

/// marketplace-link's storage in its own SQLite file (the embedded default). SQLite runs one
/// write transaction at a time: a claim checked inside the binding's transaction is used once,
/// and the partial unique indexes keep one live link per account and per organization.
struct SQLiteLinkStorage: LinkStorage {
    let pool: DatabasePool

    /// One process owns a SQLite file, so the leases an earlier process left (killed mid-step)
    /// are void: its work is taken up at once, not when the leases run out.
    init(pool: DatabasePool) throws {
        self.pool = pool
        try pool.write { db in
            try db.execute(sql: "UPDATE link SET step_lease_until = NULL WHERE step_lease_until IS NOT NULL")
            try db.execute(sql: "UPDATE sns_message SET lease_until = NULL WHERE lease_until IS NOT NULL")
            try db.execute(sql: "UPDATE usage_hour SET lease_until = NULL WHERE lease_until IS NOT NULL")
        }
    }

    func registration(claimHash: String) async throws -> Registration? {
        try await pool.tracedRead { db in try LinkStore.registration(db, claimHash: claimHash) }
    }

    func liveOrganization(awsAccountID: String, productCode: String) async throws -> String? {
        try await pool.tracedRead { db in try LinkStore.liveOrganization(db, awsAccountID: awsAccountID, productCode: productCode) }
    }

    func register(offer: OfferRecord, customerIdentifier: String, claimHash: String, claimExpiresAt: Date, at: Date) async throws -> Registration {
        let trace = TraceContext.traceParent()
        return try await pool.tracedWrite { db in
            var registration = try LinkStore.upsertRegistration(
                db, offer: offer, customerIdentifier: customerIdentifier, claimHash: claimHash, claimExpiresAt: claimExpiresAt, at: at)
            for event in try NotificationStore.waiting(db, customerIdentifier: customerIdentifier, productCode: offer.productCode) {
                let effect = try Self.apply(
                    db, SubscriptionLifecycle.changeWhenRegistering(for: event.action, to: registration), to: &registration, at: at, trace: trace)
                try NotificationStore.setState(db, messageID: event.messageID, effect.state, detail: effect.detail, at: at)
            }
            return registration
        }
    }

    func link(id: String) async throws -> Link? {
        try await pool.tracedRead { db in try LinkStore.link(db, id: id) }
    }

    func latestLink(organizationID: String) async throws -> Link? {
        try await pool.tracedRead { db in try LinkStore.latestLink(db, organizationID: organizationID) }
    }

    func links(state: LinkState?, limit: Int) async throws -> [Link] {
        try await pool.tracedRead { db in try LinkStore.links(db, state: state, limit: limit) }
    }

    func recordBinding(
        claimHash: String, organizationID: String, userID: String, at: Date,
        usable: @Sendable (Registration?) throws(MarketplaceLinkError) -> Registration
    ) async throws -> LinkStore.BindingRecord {
        let trace = TraceContext.traceParent()
        return try await pool.tracedWrite { db in
            let registration = try usable(try LinkStore.registration(db, claimHash: claimHash))
            return try LinkStore.recordBinding(db, registration: registration, organizationID: organizationID, userID: userID, at: at, trace: trace)
        }
    }

    func dueSteps(at: Date) async throws -> [LinkStore.DueStep] {
        try await pool.tracedRead { db in try LinkStore.dueSteps(db, at: at) }
    }

    func leaseStep(linkID: String, at: Date, until: Date) async throws -> Link? {
        try await pool.tracedWrite { db in try LinkStore.leaseStep(db, linkID: linkID, at: at, until: until) }
    }

    func record(_ outcome: LinkStore.Outcome, of step: LinkLifecycle.Step, linkID: String, at: Date) async throws {
        try await pool.tracedWrite { db in try LinkStore.record(db, outcome, of: step, linkID: linkID, at: at) }
    }

    func isMessageRecorded(messageID: String) async throws -> Bool {
        try await pool.tracedRead { db in try NotificationStore.isRecorded(db, messageID: messageID) }
    }

    func recordMessage(_ message: SNSMessage, state: NotificationStore.State, detail: String, confirmedTopic: Bool, at: Date) async throws -> Bool {
        try await pool.tracedWrite { db in
            if confirmedTopic { try NotificationStore.recordSubscription(db, topicArn: message.topicArn, at: at) }
            return try NotificationStore.insert(db, message, event: nil, state: state, detail: detail, at: at)
        }
    }

    func applyEvent(_ event: MarketplaceSubscriptionEvent, of message: SNSMessage, productCode: String, at: Date) async throws
        -> SubscriptionLifecycle.Effect?
    {
        let trace = TraceContext.traceParent()
        return try await pool.tracedWrite { db in
            guard try NotificationStore.insert(db, message, event: event, state: .waiting, detail: nil, at: at) else { return nil }
            let effect: SubscriptionLifecycle.Effect
            if event.productCode != productCode {
                effect = SubscriptionLifecycle.otherProduct(event.productCode, expected: productCode)
            } else if var registration = try LinkStore.registration(db, customerIdentifier: event.customerIdentifier, productCode: event.productCode)
            {
                effect = try Self.apply(
                    db, SubscriptionLifecycle.change(for: event.action, to: registration), to: &registration, at: at, trace: trace)
            } else {
                effect = SubscriptionLifecycle.waitingForRegistration
            }
            try NotificationStore.setState(db, messageID: message.messageID, effect.state, detail: effect.detail, at: at)
            return effect
        }
    }

    func leaseDueRefreshes(at: Date, until: Date) async throws -> [NotificationStore.Refresh] {
        try await pool.tracedWrite { db in try NotificationStore.leaseDueRefreshes(db, at: at, until: until) }
    }

    func completeRefresh(_ refresh: NotificationStore.Refresh, entitlements: [Entitlement], at: Date) async throws {
        let trace = TraceContext.traceParent()
        try await pool.tracedWrite { db in
            guard let registration = try LinkStore.registration(db, customerIdentifier: refresh.customerIdentifier, productCode: refresh.productCode)
            else { return }
            let offer = registration.offer.withEntitlements(OfferRecord.active(entitlements, at: at))
            try LinkStore.updateOffer(db, registrationID: registration.id, offer: offer, at: at, trace: trace)
            try NotificationStore.setState(
                db, messageID: refresh.messageID, .applied, detail: "entitlements: \(offer.entitlements.sorted { $0.key < $1.key })", at: at)
        }
    }

    func postponeRefresh(messageID: String, until: Date, error: String) async throws {
        try await pool.tracedWrite { db in try NotificationStore.postponeRefresh(db, messageID: messageID, until: until, error: error) }
    }

    // MARK: Usage metering

    func recordUsage(_ events: [UsageEventRecord], admission: UsageAdmission, at: Date) async throws -> (accepted: Int, duplicates: Int) {
        let trace = TraceContext.traceParent()
        return try await pool.tracedWrite { db in
            var links: [String: MeteredLink?] = [:]
            var (accepted, duplicates) = (0, 0)
            for event in events {
                if try admission.isRetry(event, stored: UsageStore.storedEvent(db, organizationID: event.organizationID, key: event.idempotencyKey)) {
                    duplicates += 1
                    continue
                }
                let found = try links[event.organizationID] ?? UsageStore.meteredLink(db, organizationID: event.organizationID)
                links[event.organizationID] = found
                let link = try admission.link(for: event, found)
                try admission.added(event, hourTotal: UsageStore.add(db, event, to: link, freezeAt: admission.freezeAt(event), at: at, trace: trace))
                accepted += 1
            }
            return (accepted, duplicates)
        }
    }

    func freezeUsageHours(at: Date) async throws -> Int {
        try await pool.tracedWrite { db in try UsageStore.freeze(db, at: at) }
    }

    func leaseFrozenHours(at: Date, until: Date, limit: Int) async throws -> [UsageHourRecord] {
        try await pool.tracedWrite { db in try UsageStore.leaseFrozen(db, at: at, until: until, limit: limit) }
    }

    func recordMeteringOutcomes(_ outcomes: [(hour: UsageHourRecord, outcome: MeteringOutcome)], at: Date) async throws {
        try await pool.tracedWrite { db in
            for (hour, outcome) in outcomes { try UsageStore.record(db, outcome, of: hour, at: at) }
        }
    }

    func nextMeteringDue() async throws -> Date? {
        try await pool.tracedRead { db in try UsageStore.nextDue(db) }
    }

    func usageHours(organizationID: String, since: Date) async throws -> [UsageHourRecord] {
        try await pool.tracedRead { db in try UsageStore.hours(db, organizationID: organizationID, since: since) }
    }

    /// Carries out what `SubscriptionLifecycle` decided for an event.
    private static func apply(
        _ db: Database, _ change: SubscriptionLifecycle.Change, to registration: inout Registration, at: Date, trace: String?
    ) throws -> SubscriptionLifecycle.Effect {
        switch change {
        case .record(let state, let detail):
            return SubscriptionLifecycle.Effect(state: state, detail: detail)
        case .close(let reason):
            let linkID = try LinkStore.close(db, registrationID: registration.id, reason: reason, at: at, trace: trace)
            registration.closedReason = reason
            return SubscriptionLifecycle.closed(linkID: linkID)
        case .markUnsubscribePending:
            return SubscriptionLifecycle.marked(try LinkStore.markUnsubscribePending(db, registrationID: registration.id, at: at, trace: trace))
        }
    }
}
