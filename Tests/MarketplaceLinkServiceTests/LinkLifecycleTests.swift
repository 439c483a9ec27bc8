import Contracts
import RPCCore
import Testing

@testable import MarketplaceLinkService

/// Every (state, owed step, event) of a link's lifecycle, without a database or a socket.
struct LinkLifecycleTests {
    enum Event: CaseIterable, CustomStringConvertible {
        case confirmedSet, confirmedClear, refusedSet, refusedClear, transientSet, transientClear
        case unsubscribePending, subscriptionEnded, termsChanged, termsSame

        func apply(to lifecycle: inout LinkLifecycle) -> LinkLifecycle.Action {
            switch self {
            case .confirmedSet: lifecycle.organizationConfirmed(.setBilling)
            case .confirmedClear: lifecycle.organizationConfirmed(.clearBilling)
            case .refusedSet: lifecycle.permanentRefusal(.setBilling)
            case .refusedClear: lifecycle.permanentRefusal(.clearBilling)
            case .transientSet: lifecycle.transientFailure(.setBilling)
            case .transientClear: lifecycle.transientFailure(.clearBilling)
            case .unsubscribePending: lifecycle.unsubscribePending()
            case .subscriptionEnded: lifecycle.subscriptionEnded()
            case .termsChanged: lifecycle.entitlementUpdated(termsChanged: true)
            case .termsSame: lifecycle.entitlementUpdated(termsChanged: false)
            }
        }

        /// The step an outcome event reports on, if it is one.
        var step: LinkLifecycle.Step? {
            switch self {
            case .confirmedSet, .refusedSet, .transientSet: .setBilling
            case .confirmedClear, .refusedClear, .transientClear: .clearBilling
            default: nil
            }
        }

        var description: String { "\(self)" }
    }

    static let states: [LinkState] = [.binding, .active, .unsubscribePending, .cancelled, .failed]
    static let steps: [LinkLifecycle.Step?] = [nil, .setBilling, .clearBilling]
    static var everyStart: [LinkLifecycle] { states.flatMap { state in steps.map { LinkLifecycle(state: state, pendingStep: $0) } } }

    /// The only state changes there are; anything else is a bug.
    static let allowedTransitions: Set<[LinkState]> = [
        [.binding, .active], [.binding, .failed], [.binding, .unsubscribePending], [.active, .unsubscribePending],
        [.binding, .cancelled], [.active, .cancelled], [.unsubscribePending, .cancelled]
    ]

    @Test func everyPairChangesStateOnlyAlongTheDiagram() {
        for start in Self.everyStart {
            for event in Event.allCases {
                var lifecycle = start
                let action = event.apply(to: &lifecycle)
                if lifecycle.state != start.state {
                    #expect(Self.allowedTransitions.contains([start.state, lifecycle.state]), "\(start) + \(event) -> \(lifecycle)")
                }
                if action == .ignore { #expect(lifecycle == start, "an ignored event changes nothing: \(start) + \(event)") }
                if let step = event.step, start.pendingStep != step {
                    #expect(action == .ignore, "an outcome for a step not owed is stale: \(start) + \(event)")
                }
                if start.state == .cancelled || start.state == .failed, event.step == nil {
                    #expect(action == .ignore, "AWS events do not reopen a final state: \(start) + \(event)")
                }
                if case .owe(let step, _) = action { #expect(lifecycle.pendingStep == step) }
                if action == .saveAndReleaseClaim { #expect(lifecycle.state == .failed) }
            }
        }
    }

    @Test func theRulesPairByPair() {
        typealias Row = (
            state: LinkState, step: LinkLifecycle.Step?, event: Event, action: LinkLifecycle.Action, state2: LinkState,
            step2: LinkLifecycle.Step?
        )
        let rows: [Row] = [
            (.binding, .setBilling, .confirmedSet, .save, .active, nil),
            (.binding, .setBilling, .refusedSet, .saveAndReleaseClaim, .failed, nil),
            (.binding, .setBilling, .transientSet, .retryLater, .binding, .setBilling),
            (.binding, .setBilling, .unsubscribePending, .save, .unsubscribePending, .setBilling),
            (.binding, .setBilling, .subscriptionEnded, .owe(.clearBilling, startNow: true), .cancelled, .clearBilling),
            (.binding, .setBilling, .termsChanged, .owe(.setBilling, startNow: false), .binding, .setBilling),
            (.active, nil, .termsChanged, .owe(.setBilling, startNow: true), .active, .setBilling),
            (.active, nil, .termsSame, .ignore, .active, nil),
            (.active, .setBilling, .refusedSet, .save, .active, nil),
            (.active, .setBilling, .confirmedSet, .save, .active, nil),
            (.active, nil, .unsubscribePending, .save, .unsubscribePending, nil),
            (.active, nil, .subscriptionEnded, .owe(.clearBilling, startNow: true), .cancelled, .clearBilling),
            (.unsubscribePending, .setBilling, .confirmedSet, .save, .unsubscribePending, nil),
            (.unsubscribePending, .setBilling, .refusedSet, .save, .unsubscribePending, nil),
            (.unsubscribePending, nil, .unsubscribePending, .ignore, .unsubscribePending, nil),
            (.unsubscribePending, nil, .subscriptionEnded, .owe(.clearBilling, startNow: true), .cancelled, .clearBilling),
            (.cancelled, .clearBilling, .confirmedClear, .save, .cancelled, nil),
            (.cancelled, .clearBilling, .refusedClear, .save, .cancelled, nil),
            (.cancelled, .clearBilling, .transientClear, .retryLater, .cancelled, .clearBilling),
            (.cancelled, .clearBilling, .confirmedSet, .ignore, .cancelled, .clearBilling),
            (.cancelled, nil, .subscriptionEnded, .ignore, .cancelled, nil),
            (.cancelled, nil, .termsChanged, .ignore, .cancelled, nil),
            (.failed, nil, .unsubscribePending, .ignore, .failed, nil),
            (.failed, nil, .subscriptionEnded, .ignore, .failed, nil)
        ]
        for row in rows {
            var lifecycle = LinkLifecycle(state: row.state, pendingStep: row.step)
            let action = row.event.apply(to: &lifecycle)
            #expect(
                action == row.action && lifecycle == LinkLifecycle(state: row.state2, pendingStep: row.step2),
                "\(row.state)/\(String(describing: row.step)) + \(row.event): got \(action), \(lifecycle)")
        }
        let (bound, action) = LinkLifecycle.bindRequested()
        #expect(bound == LinkLifecycle(state: .binding, pendingStep: .setBilling) && action == .owe(.setBilling, startNow: true))
        #expect(LinkLifecycle.liveStates == [.binding, .active, .unsubscribePending])
    }

    @Test func refusalsThatARetryCannotChangeArePermanent() {
        for code in [ConnectCode.failedPrecondition, .invalidArgument, .notFound, .permissionDenied, .alreadyExists] {
            #expect(LinkLifecycle.isPermanent(code))
        }
        for code in [ConnectCode.unavailable, .deadlineExceeded, .internal, .unknown, .resourceExhausted, .canceled, .unauthenticated] {
            #expect(!LinkLifecycle.isPermanent(code), "\(code) is retried")
        }
    }
}
