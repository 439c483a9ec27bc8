import Contracts
import Foundation

/// What a registration's claim is worth at a moment: the one place its states are decided, for
/// GetClaim and for binding.
enum ClaimRules {
    static func state(of registration: LinkStore.Registration, at: Date) -> ClaimState {
        if registration.closedReason != nil { return .ended }
        if registration.claimUsedAt != nil { return .bound }
        return at >= registration.claimExpiresAt ? .expired : .pending
    }

    /// The registration if its claim may still be bound; otherwise why not.
    static func usable(_ registration: LinkStore.Registration?, at: Date) throws(MarketplaceLinkError) -> LinkStore.Registration {
        guard let registration else { throw .claimUnknown }
        switch state(of: registration, at: at) {
        case .pending: return registration
        case .ended: throw .subscriptionEnded(registration.closedReason ?? "ended")
        case .bound: throw .claimUsed
        case .expired: throw .claimExpired
        }
    }
}
