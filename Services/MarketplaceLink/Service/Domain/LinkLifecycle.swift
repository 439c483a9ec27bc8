import Contracts
import RPCCore

/// A link's lifecycle as a value: its state and the saga step it owes organization. Each event
/// is a `mutating` method returning what the caller must do; the rules live here once and are
/// tested for every (state, event) pair without a database (`LinkLifecycleTests`).
///
/// BINDING --confirmed--> ACTIVE; BINDING --refused for good--> FAILED (the claim is free again);
/// BINDING/ACTIVE --unsubscribe-pending--> UNSUBSCRIBE_PENDING; any live state --subscription
/// ended--> CANCELLED, owing CLEAR_BILLING. CANCELLED and FAILED are final.
struct LinkLifecycle: Equatable, Sendable {
    /// What a link owes organization.
    enum Step: String, Sendable, CaseIterable, Decodable {
        case setBilling = "SET_BILLING"
        case clearBilling = "CLEAR_BILLING"
    }

    /// What the caller does after an event.
    enum Action: Equatable, Sendable {
        /// The event does not apply (a final state, a stale outcome): change nothing.
        case ignore
        /// Store the new state; the owed step is done (or dropped: nothing is left to do).
        case save
        /// Store the new state and run `step`: from now if nothing was owed before, else when
        /// the step already owed was due (a retry keeps its place).
        case owe(Step, startNow: Bool)
        /// Store the new state (FAILED) and free the registration's claim for another binding.
        case saveAndReleaseClaim
        /// Keep the state; try the owed step again later (backoff).
        case retryLater
    }

    private(set) var state: LinkState
    private(set) var pendingStep: Step?

    init(state: LinkState, pendingStep: Step?) {
        self.state = state
        self.pendingStep = pendingStep
    }

    /// Usage is metered while the link is ACTIVE (or BINDING, about to be); once the buyer
    /// unsubscribes, what was recorded is sent at once, as AWS wants it within the hour.
    var takesUsage: Bool { state == .active || state == .binding }

    /// States in which the link bills (or is about to bill) the organization: one such link per
    /// AWS account and per organization.
    static let liveStates: [LinkState] = [.binding, .active, .unsubscribePending]
    var isLive: Bool { Self.liveStates.contains(state) }

    // MARK: Events

    /// An admin binds a claim to an organization: recorded as BINDING, owing SET_BILLING.
    static func bindRequested() -> (LinkLifecycle, Action) {
        (LinkLifecycle(state: .binding, pendingStep: .setBilling), .owe(.setBilling, startNow: true))
    }

    /// organization did what `step` asked.
    mutating func organizationConfirmed(_ step: Step) -> Action {
        guard pendingStep == step else { return .ignore }
        pendingStep = nil
        if state == .binding { state = .active }
        return .save
    }

    /// organization refused `step` for good (a bad request, the organization gone, a conflict).
    mutating func permanentRefusal(_ step: Step) -> Action {
        guard pendingStep == step else { return .ignore }
        pendingStep = nil
        // A binding never confirmed fails and frees its claim; a live link whose contract update
        // was refused keeps billing as before; a cancelled link has nothing left to clear.
        guard step == .setBilling, state == .binding else { return .save }
        state = .failed
        return .saveAndReleaseClaim
    }

    /// `step` could not be done now (organization unreachable, overloaded).
    mutating func transientFailure(_ step: Step) -> Action {
        pendingStep == step ? .retryLater : .ignore
    }

    /// AWS Marketplace: the buyer asked to unsubscribe. A SET_BILLING still owed keeps running,
    /// so a later cancellation has something definite to clear.
    mutating func unsubscribePending() -> Action {
        guard state == .binding || state == .active else { return .ignore }
        state = .unsubscribePending
        return .save
    }

    /// AWS Marketplace: `unsubscribe-success` or `subscribe-fail`. The link is cancelled and owes
    /// organization a CLEAR_BILLING, which replaces any SET_BILLING still owed.
    mutating func subscriptionEnded() -> Action {
        guard isLive else { return .ignore }
        state = .cancelled
        pendingStep = .clearBilling
        return .owe(.clearBilling, startNow: true)
    }

    /// AWS Marketplace: `entitlement-updated`, with the contract's terms fetched afresh. A live
    /// link whose terms changed owes organization a SET_BILLING with the new contract.
    mutating func entitlementUpdated(termsChanged: Bool) -> Action {
        guard isLive, termsChanged else { return .ignore }
        let alreadyOwing = pendingStep != nil
        pendingStep = .setBilling
        return .owe(.setBilling, startNow: !alreadyOwing)
    }

    /// How organization's refusal of a step counts: these codes will not change on a retry.
    static func isPermanent(_ code: ConnectCode) -> Bool {
        [.failedPrecondition, .invalidArgument, .notFound, .permissionDenied, .alreadyExists].contains(code)
    }
}
