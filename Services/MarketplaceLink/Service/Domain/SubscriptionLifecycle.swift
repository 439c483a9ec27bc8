import AWSMarketplace
import Foundation
import GRDB

/// What AWS Marketplace's subscription events do to a registration and its link: database rules
/// applied inside the caller's transaction, when the event arrives or, for an event that came
/// before its registration, when the registration does.
///
/// Events may arrive late and out of order, so the ending of a subscription is final: once
/// `subscribe-fail` or `unsubscribe-success` has been applied, an older `unsubscribe-pending`
/// changes nothing.
enum SubscriptionLifecycle {
    struct Effect {
        var state: NotificationStore.State
        var detail: String?
    }

    static func apply(
        _ db: Database, _ action: MarketplaceSubscriptionEvent.Action, to registration: inout LinkStore.Registration,
        at: Date
    ) throws -> Effect {
        if action != .subscribeSuccess, let reason = registration.closedReason {
            return Effect(state: .ignored, detail: "the subscription had already ended (\(reason))")
        }
        switch action {
        case .subscribeSuccess:
            return Effect(state: .applied, detail: "nothing to do: the buyer registers through Set up your account")
        case .subscribeFail, .unsubscribeSuccess:
            // The cancelled link now owes organization a CLEAR_BILLING step.
            let linkID = try LinkStore.close(db, registrationID: registration.id, reason: action.rawValue, at: at)
            registration.closedReason = action.rawValue
            return Effect(state: .applied, detail: linkID.map { "link \($0) cancelled" } ?? "registration closed")
        case .unsubscribePending:
            let marked = try LinkStore.markUnsubscribePending(db, registrationID: registration.id, at: at)
            return Effect(state: .applied, detail: marked ? "link marked UNSUBSCRIBE_PENDING" : "no live link")
        case .entitlementUpdated:
            return Effect(state: .refresh, detail: "entitlements to fetch")
        }
    }

    /// Applies, oldest first, the events that arrived before `registration`; returns it as they
    /// leave it. An entitlement-updated among them is already reflected: registering fetched the
    /// current entitlements.
    static func applyWaiting(_ db: Database, to registration: LinkStore.Registration, at: Date) throws -> LinkStore.Registration {
        var registration = registration
        let waiting = try NotificationStore.waiting(
            db, customerIdentifier: registration.customerIdentifier,
            productCode: registration.offer.productCode)
        for event in waiting {
            let effect =
                event.action == .entitlementUpdated
                ? Effect(state: .applied, detail: "registration fetched the current entitlements")
                : try apply(db, event.action, to: &registration, at: at)
            try NotificationStore.setState(db, messageID: event.messageID, effect.state, detail: effect.detail, at: at)
        }
        return registration
    }
}
