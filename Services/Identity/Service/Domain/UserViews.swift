import Contracts

/// What users and other services are shown of a stored user: built here, in the domain, never in
/// storage.
extension UserRecord {
    var onboardingState: OnboardingState { profile == nil ? .needsBusinessProfile : .complete }

    /// The user as the API shows them to themselves.
    var message: User {
        User(
            id: id, email: email, fullName: fullName, emailVerified: emailVerifiedAt != nil,
            onboardingState: onboardingState, businessProfile: profile, createdAt: createdAt)
    }
}
