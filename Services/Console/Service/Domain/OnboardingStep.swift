import Contracts

/// The next step of the buyer's journey, from what is known of them: whether they are signed
/// in, whether they still owe their business details, and whether an AWS Marketplace
/// registration (a claim) is waiting to be linked.
enum OnboardingStep: Equatable {
    /// Not signed in: sign in, or create an account.
    case signIn
    /// Signed in, business details missing: they come before any organization step.
    case businessProfile
    /// A claim waits: choose (or create) the organization to bill.
    case chooseOrganization
    /// Nothing pending: the organizations.
    case organizations

    struct Buyer: Equatable {
        var onboardingState: OnboardingState
    }

    static func next(buyer: Buyer?, hasPendingClaim: Bool) -> OnboardingStep {
        guard let buyer else { return .signIn }
        if buyer.onboardingState == .needsBusinessProfile { return .businessProfile }
        return hasPendingClaim ? .chooseOrganization : .organizations
    }

    /// The console path of this step.
    var path: String {
        switch self {
        case .signIn: "/login"
        case .businessProfile: "/profile"
        case .chooseOrganization: "/marketplace/link"
        case .organizations: "/organizations"
        }
    }
}
