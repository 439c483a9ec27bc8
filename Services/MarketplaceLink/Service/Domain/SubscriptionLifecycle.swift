import AWSMarketplace
import Foundation

/// What AWS Marketplace's subscription events do to a registration and its link, decided from
/// the registration alone; the storage applies the change inside the transaction that records
/// the event or, for an event that came before its registration, the one that stores it.
///
/// Events may arrive late and out of order, so the ending of a subscription is final: once
/// `subscribe-fail` or `unsubscribe-success` has been applied, an older `unsubscribe-pending`
/// changes nothing.
enum SubscriptionLifecycle {
    /// What became of an event, as its message records it.
    struct Effect: Sendable {
        var state: NotificationStore.State
        var detail: String?
    }

    /// What the storage does for an event.
    enum Change: Equatable {
        /// Nothing to write but the message's state.
        case record(NotificationStore.State, String)
        /// End the registration; its live link is cancelled (`closed(linkID:)` says what came of it).
        case close(reason: String)
        /// The live link shows UNSUBSCRIBE_PENDING (`marked(_:)`).
        case markUnsubscribePending
    }

    static func change(for action: MarketplaceSubscriptionEvent.Action, to registration: LinkStore.Registration) -> Change {
        if action != .subscribeSuccess, let reason = registration.closedReason {
            return .record(.ignored, "the subscription had already ended (\(reason))")
        }
        switch action {
        case .subscribeSuccess: return .record(.applied, "nothing to do: the buyer registers through Set up your account")
        case .subscribeFail, .unsubscribeSuccess: return .close(reason: action.rawValue)
        case .unsubscribePending: return .markUnsubscribePending
        case .entitlementUpdated: return .record(.refresh, "entitlements to fetch")
        }
    }

    /// The change for an event that waited for its registration: an entitlement-updated among
    /// them is already reflected, since registering fetched the current entitlements.
    static func changeWhenRegistering(for action: MarketplaceSubscriptionEvent.Action, to registration: LinkStore.Registration) -> Change {
        action == .entitlementUpdated ? .record(.applied, "registration fetched the current entitlements") : change(for: action, to: registration)
    }

    /// A registration closed; `linkID` the live link it cancelled, if it had one.
    static func closed(linkID: String?) -> Effect {
        Effect(state: .applied, detail: linkID.map { "link \($0) cancelled" } ?? "registration closed")
    }

    static func marked(_ marked: Bool) -> Effect {
        Effect(state: .applied, detail: marked ? "link marked UNSUBSCRIBE_PENDING" : "no live link")
    }

    static let waitingForRegistration = Effect(state: .waiting, detail: "no registration yet; applied when the buyer registers")

    static func otherProduct(_ productCode: String, expected: String) -> Effect {
        Effect(state: .ignored, detail: "product \(productCode) is not the committed contract \(expected)")
    }
}
