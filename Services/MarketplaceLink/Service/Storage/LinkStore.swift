import AWSMarketplace
import Contracts
import Foundation
import GRDB
import ServiceRuntime

/// What the buyer bought, as stored with a registration and its link (JSON in the `offer` column).
struct OfferRecord: Codable, Sendable, Equatable {
    var productCode: String
    var awsAccountID: String
    var licenseArn: String?
    var entitlements: [String: String]
    var contractEndsAt: Date?

    /// Sorted keys, so the same offer is always the same text (compared when entitlements change).
    var json: String { String(decoding: (try? Self.encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self) }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    init(productCode: String, awsAccountID: String, licenseArn: String?, entitlements: [String: String], contractEndsAt: Date?) {
        self.productCode = productCode
        self.awsAccountID = awsAccountID
        self.licenseArn = licenseArn
        self.entitlements = entitlements
        self.contractEndsAt = contractEndsAt
    }

    /// The terms the active entitlements grant: each dimension's value, and the latest expiry.
    func withEntitlements(_ active: [Entitlement]) -> OfferRecord {
        var offer = self
        offer.entitlements = Dictionary(active.map { ($0.dimension, $0.value.map(Self.text) ?? "") }) { first, _ in first }
        offer.contractEndsAt = active.compactMap(\.expirationDate).max()
        offer.licenseArn = licenseArn ?? active.compactMap(\.licenseArn).first
        return offer
    }

    /// The entitlements that have not expired at `at`.
    static func active(_ entitlements: [Entitlement], at: Date) -> [Entitlement] {
        entitlements.filter { ($0.expirationDate ?? .distantFuture) > at }
    }

    private static func text(_ value: Entitlement.Value) -> String {
        switch value {
        case .integer(let number): String(number)
        case .double(let number): String(number)
        case .boolean(let flag): String(flag)
        case .string(let text): text
        }
    }
}

/// marketplace-link's tables, read and written inside the caller's transaction.
enum LinkStore {
    struct Registration: DatabaseRecord, Sendable {
        var id: String
        var customerIdentifier: String
        var offer: OfferRecord
        var claimExpiresAt: Date
        var claimUsedAt: Date?
        /// Set when AWS Marketplace ended the subscription (`subscribe-fail`, `unsubscribe-success`).
        var closedReason: String?
    }

    struct Link: DatabaseRecord, Sendable {
        var id: String
        var registrationID: String
        var organizationID: String
        var offer: OfferRecord
        var state: LinkState
        var linkedBy: String
        var linkedAt: Date
        var failureReason: String?
        var attempts: Int
        var pendingStep: LinkLifecycle.Step?

        var lifecycle: LinkLifecycle { LinkLifecycle(state: state, pendingStep: pendingStep) }
    }

    /// What a saga step ended with.
    enum Outcome: Sendable, CustomStringConvertible {
        case done
        case failed(String)
        case retry(at: Date, error: String)

        /// The outcome of `step` as `LinkLifecycle` rules it, with what to store beside the new
        /// state: why it failed (or is being retried) and when to try again.
        func apply(to lifecycle: inout LinkLifecycle, step: LinkLifecycle.Step) -> (
            action: LinkLifecycle.Action, failureReason: String?, nextAttemptAt: Date?
        ) {
            switch self {
            case .done: (lifecycle.organizationConfirmed(step), nil, nil)
            case .failed(let reason): (lifecycle.permanentRefusal(step), reason, nil)
            case .retry(let when, let error): (lifecycle.transientFailure(step), "retrying: \(error)", when)
            }
        }

        var description: String {
            switch self {
            case .done: "done"
            case .failed(let reason): "failed: \(reason)"
            case .retry(_, let error): "retry: \(error)"
            }
        }
    }

    /// `LinkLifecycle.liveStates` as an SQL list.
    static let liveStates = "(" + LinkLifecycle.liveStates.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"

    /// The organization this account's contract is bound to, if a live link exists.
    static func liveOrganization(_ db: Database, awsAccountID: String, productCode: String) throws -> String? {
        try String.fetchOne(
            db, sql: "SELECT organization_id FROM link WHERE aws_account_id = ? AND product_code = ? AND state IN \(liveStates)",
            arguments: [awsAccountID, productCode])
    }

    /// Keeps one pending registration per (AWS account, product); a new claim replaces the old one.
    /// A registration AWS Marketplace ended stays ended for the same customer; a new subscription
    /// (another customer identifier) opens it again. Returns the registration as stored.
    @discardableResult
    static func upsertRegistration(
        _ db: Database, offer: OfferRecord, customerIdentifier: String, claimHash: String,
        claimExpiresAt: Date, at: Date
    ) throws -> Registration {
        try db.execute(
            sql: """
                INSERT INTO registration (id, aws_account_id, customer_identifier, product_code, offer, claim_hash, claim_expires_at, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(aws_account_id, product_code) DO UPDATE SET customer_identifier = excluded.customer_identifier,
                    offer = excluded.offer, claim_hash = excluded.claim_hash, claim_expires_at = excluded.claim_expires_at,
                    claim_used_at = NULL, updated_at = excluded.updated_at,
                    closed_reason = CASE WHEN customer_identifier = excluded.customer_identifier THEN closed_reason END,
                    closed_at = CASE WHEN customer_identifier = excluded.customer_identifier THEN closed_at END
                """,
            arguments: [
                UUID().uuidString.lowercased(), offer.awsAccountID, customerIdentifier, offer.productCode, offer.json,
                claimHash, claimExpiresAt.timeIntervalSince1970, at.timeIntervalSince1970, at.timeIntervalSince1970
            ])
        return try registration(db, claimHash: claimHash)!
    }

    static func registration(_ db: Database, claimHash: String) throws -> Registration? {
        try Registration.fetchOne(db, sql: "SELECT * FROM registration WHERE claim_hash = ?", arguments: [claimHash])
    }

    /// The registration of an AWS Marketplace customer, if they have registered.
    static func registration(_ db: Database, customerIdentifier: String, productCode: String) throws -> Registration? {
        try Registration.fetchOne(
            db, sql: "SELECT * FROM registration WHERE customer_identifier = ? AND product_code = ?",
            arguments: [customerIdentifier, productCode]
        )
    }

    /// What recording a binding came to.
    enum BindingRecord: Equatable {
        case recorded(linkID: String)
        /// The AWS account's contract already has a live link.
        case accountAlreadyLinked
        /// The organization already has a live link.
        case organizationAlreadyLinked
    }

    /// Records the intent (BINDING) and uses up the claim, in one transaction. The partial unique
    /// indexes refuse a second live link for the account or for the organization.
    static func recordBinding(
        _ db: Database, registration: Registration, organizationID: String, userID: String, at: Date, trace: String?
    ) throws -> BindingRecord {
        if try liveOrganization(db, awsAccountID: registration.offer.awsAccountID, productCode: registration.offer.productCode) != nil {
            return .accountAlreadyLinked
        }
        if try String.fetchOne(db, sql: "SELECT id FROM link WHERE organization_id = ? AND state IN \(liveStates)", arguments: [organizationID])
            != nil
        {
            return .organizationAlreadyLinked
        }
        let id = UUID().uuidString.lowercased()
        let (lifecycle, _) = LinkLifecycle.bindRequested()
        do {
            try db.execute(
                sql: """
                    INSERT INTO link (id, registration_id, aws_account_id, product_code, organization_id, offer, state, linked_by, linked_at,
                                      pending_step, next_attempt_at, updated_at, trace_parent)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, registration.id, registration.offer.awsAccountID, registration.offer.productCode, organizationID,
                    registration.offer.json, lifecycle.state.rawValue, userID, at.timeIntervalSince1970,
                    lifecycle.pendingStep?.rawValue, at.timeIntervalSince1970, at.timeIntervalSince1970, trace
                ])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            return error.message?.contains("organization_id") == true ? .organizationAlreadyLinked : .accountAlreadyLinked
        }
        try db.execute(
            sql: "UPDATE registration SET claim_used_at = ?, updated_at = ? WHERE id = ?",
            arguments: [at.timeIntervalSince1970, at.timeIntervalSince1970, registration.id])
        return .recorded(linkID: id)
    }

    static func link(_ db: Database, id: String) throws -> Link? {
        try Link.fetchOne(db, sql: "SELECT * FROM link WHERE id = ?", arguments: [id])
    }

    /// The organization's live link, else its most recent one.
    static func latestLink(_ db: Database, organizationID: String) throws -> Link? {
        try Link.fetchOne(
            db,
            sql: """
                SELECT * FROM link WHERE organization_id = ?
                ORDER BY CASE WHEN state IN \(liveStates) THEN 0 ELSE 1 END, linked_at DESC LIMIT 1
                """, arguments: [organizationID]
        )
    }

    static func links(_ db: Database, state: LinkState?, limit: Int) throws -> [Link] {
        try Link.fetchAll(
            db, sql: "SELECT * FROM link WHERE ?1 IS NULL OR state = ?1 ORDER BY linked_at DESC LIMIT ?2",
            arguments: [state?.rawValue, limit]
        )
    }

    /// A link owing a saga step, with the trace of the call that made it owe it.
    struct DueStep: Sendable {
        var linkID: String
        var traceParent: String?
    }

    /// Links owing organization a saga step that is due now and not leased, including those left by a crash.
    static func dueSteps(_ db: Database, at: Date) throws -> [DueStep] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT id, trace_parent FROM link WHERE pending_step IS NOT NULL AND next_attempt_at <= ?1
                    AND (step_lease_until IS NULL OR step_lease_until <= ?1)
                ORDER BY next_attempt_at LIMIT 50
                """, arguments: [at.timeIntervalSince1970]
        ).map { DueStep(linkID: $0["id"], traceParent: $0["trace_parent"]) }
    }

    /// The link with its owed step leased until `until`; nil if it owes none or the step is leased.
    static func leaseStep(_ db: Database, linkID: String, at: Date, until: Date) throws -> Link? {
        guard
            let link = try Link.fetchOne(
                db,
                sql: """
                    SELECT * FROM link WHERE id = ? AND pending_step IS NOT NULL AND (step_lease_until IS NULL OR step_lease_until <= ?)
                    """, arguments: [linkID, at.timeIntervalSince1970])
        else { return nil }
        try db.execute(sql: "UPDATE link SET step_lease_until = ? WHERE id = ?", arguments: [until.timeIntervalSince1970, linkID])
        return link
    }

    /// Applies the outcome of `step` as `LinkLifecycle` rules it; an outcome for a step the link no
    /// longer owes (a cancellation replaced SET_BILLING by CLEAR_BILLING meanwhile) changes nothing.
    static func record(_ db: Database, _ outcome: Outcome, of step: LinkLifecycle.Step, linkID: String, at: Date) throws {
        guard let link = try link(db, id: linkID) else { return }
        try db.execute(sql: "UPDATE link SET step_lease_until = NULL WHERE id = ?", arguments: [linkID])
        var lifecycle = link.lifecycle
        let (action, failureReason, nextAttemptAt) = outcome.apply(to: &lifecycle, step: step)
        guard action != .ignore else { return }
        try db.execute(
            sql: """
                UPDATE link SET state = ?, pending_step = ?, attempts = attempts + 1, next_attempt_at = ?, failure_reason = ?, updated_at = ?
                WHERE id = ?
                """,
            arguments: [
                lifecycle.state.rawValue, lifecycle.pendingStep?.rawValue, nextAttemptAt?.timeIntervalSince1970, failureReason,
                at.timeIntervalSince1970, linkID
            ])
        if action == .saveAndReleaseClaim {
            // Rolled back: the claim may be used again, for another organization.
            try db.execute(sql: "UPDATE registration SET claim_used_at = NULL WHERE id = ?", arguments: [link.registrationID])
        }
    }

    /// Stores a lifecycle event's new state; a step owed anew starts over (attempts from 0) and
    /// remembers `trace`, the trace of the call that caused it.
    private static func save(
        _ db: Database, _ link: Link, _ lifecycle: LinkLifecycle, _ action: LinkLifecycle.Action,
        offer: OfferRecord? = nil, at: Date, trace: String?
    ) throws {
        switch action {
        case .ignore:
            return
        case .owe(_, let startNow):
            try db.execute(
                sql: """
                    UPDATE link SET state = ?, pending_step = ?, attempts = 0, next_attempt_at = CASE WHEN ? THEN ? ELSE next_attempt_at END,
                        offer = COALESCE(?, offer), updated_at = ?, trace_parent = ? WHERE id = ?
                    """,
                arguments: [
                    lifecycle.state.rawValue, lifecycle.pendingStep?.rawValue, startNow, at.timeIntervalSince1970,
                    offer?.json, at.timeIntervalSince1970, trace, link.id
                ])
        case .save, .saveAndReleaseClaim, .retryLater:
            try db.execute(
                sql: "UPDATE link SET state = ?, pending_step = ?, offer = COALESCE(?, offer), updated_at = ? WHERE id = ?",
                arguments: [lifecycle.state.rawValue, lifecycle.pendingStep?.rawValue, offer?.json, at.timeIntervalSince1970, link.id])
        }
        if !lifecycle.takesUsage { try UsageStore.closeOpenHours(db, linkID: link.id, at: at) }
    }

    // MARK: Subscription lifecycle

    /// The registration's live link, if any.
    static func liveLink(_ db: Database, registrationID: String) throws -> Link? {
        try Link.fetchOne(
            db, sql: "SELECT * FROM link WHERE registration_id = ? AND state IN \(liveStates)",
            arguments: [registrationID]
        )
    }

    /// Ends a registration (its claim can no longer be used) and cancels its live link, which then
    /// owes organization a CLEAR_BILLING step. Returns the cancelled link's id.
    static func close(_ db: Database, registrationID: String, reason: String, at: Date, trace: String?) throws -> String? {
        try db.execute(
            sql: "UPDATE registration SET closed_reason = ?, closed_at = ?, updated_at = ? WHERE id = ?",
            arguments: [reason, at.timeIntervalSince1970, at.timeIntervalSince1970, registrationID])
        guard let link = try liveLink(db, registrationID: registrationID) else { return nil }
        var lifecycle = link.lifecycle
        let action = lifecycle.subscriptionEnded()
        try save(db, link, lifecycle, action, at: at, trace: trace)
        return link.id
    }

    /// The buyer asked to unsubscribe: the live link shows UNSUBSCRIBE_PENDING.
    static func markUnsubscribePending(_ db: Database, registrationID: String, at: Date, trace: String?) throws -> Bool {
        guard let link = try liveLink(db, registrationID: registrationID) else { return false }
        var lifecycle = link.lifecycle
        let action = lifecycle.unsubscribePending()
        try save(db, link, lifecycle, action, at: at, trace: trace)
        return action != .ignore
    }

    /// Replaces the offer (its entitlements) of a registration and of its live link; a link that
    /// organization already bills through then owes it a SET_BILLING step with the new contract.
    static func updateOffer(_ db: Database, registrationID: String, offer: OfferRecord, at: Date, trace: String?) throws {
        try db.execute(
            sql: "UPDATE registration SET offer = ?, updated_at = ? WHERE id = ?",
            arguments: [offer.json, at.timeIntervalSince1970, registrationID])
        guard let link = try liveLink(db, registrationID: registrationID) else { return }
        var lifecycle = link.lifecycle
        let action = lifecycle.entitlementUpdated(termsChanged: link.offer.json != offer.json)
        try save(db, link, lifecycle, action, offer: offer, at: at, trace: trace)
    }
}
