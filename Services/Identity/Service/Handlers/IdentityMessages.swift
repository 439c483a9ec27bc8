import Contracts

/// The wire messages of what the use cases answer with, built here in the handlers layer.
extension UserRecord {
    /// The user as the API shows them to themselves.
    var message: User {
        User(
            id: id, email: email, fullName: fullName, emailVerified: emailVerifiedAt != nil,
            onboardingState: onboardingState, businessProfile: profile, createdAt: createdAt)
    }

    /// The user as other services see them (LookupUsers).
    var summary: UserSummary {
        UserSummary(id: id, email: email, fullName: fullName, emailVerified: emailVerifiedAt != nil)
    }
}

extension AcknowledgedResponse {
    /// What every Register, ResendVerification and RequestPasswordReset answers, whatever the email.
    static let checkYourEmail = AcknowledgedResponse(
        message: "If this address can be used, we have sent an email to it. Follow the link in it to continue.")
}

extension AccessTokenResponse {
    init(_ issued: IssuedAccessToken) {
        self.init(accessToken: issued.token, accessTokenExpiresAt: issued.expiresAt)
    }
}

extension LoginResponse {
    init(_ signIn: SignIn) {
        self.init(
            sessionToken: signIn.sessionToken, sessionExpiresAt: signIn.sessionExpiresAt, accessToken: signIn.access.token,
            accessTokenExpiresAt: signIn.access.expiresAt, user: signIn.user.message)
    }
}

extension IntrospectSessionResponse {
    init(_ session: LiveSession?) {
        guard let session else {
            self.init(active: false)
            return
        }
        self.init(
            active: true, userId: session.user.id, email: session.user.email, emailVerified: session.user.emailVerifiedAt != nil,
            expiresAt: session.endsAt)
    }
}
