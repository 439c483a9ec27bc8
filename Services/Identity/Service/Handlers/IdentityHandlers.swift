import AccessTokens
import Contracts
import RPCCore

/// Binds `identity.v1.IdentityService` to the use cases, finds the caller (access token, client
/// IP) and builds the answers (`IdentityMessages`). Domain errors (`IdentityError`) carry their own Connect code.
struct IdentityHandlers {
    let accounts: Accounts

    /// The header a trusted front end (a service with a credential) uses to pass on the end user's IP.
    static let endUserIPHeader = CallContext.endUserIPHeader

    func register(in router: inout RPCRouter) {
        let accounts = accounts
        router.register(Identity.register) { request, context in
            try await accounts.register(request, clientIP: Self.clientIP(context))
            return AcknowledgedResponse.checkYourEmail
        }
        router.register(Identity.verifyEmail) { request, context in
            VerifyEmailResponse(email: try await accounts.verifyEmail(request, clientIP: Self.clientIP(context)))
        }
        router.register(Identity.resendVerification) { request, _ in
            try await accounts.resendVerification(request)
            return AcknowledgedResponse.checkYourEmail
        }
        router.register(Identity.login) { request, context in
            LoginResponse(try await accounts.login(request, clientIP: Self.clientIP(context)))
        }
        router.register(Identity.refreshAccessToken) { request, _ in
            AccessTokenResponse(try await accounts.refreshAccessToken(request))
        }
        router.register(Identity.logout) { request, context in
            try await accounts.logout(request, clientIP: Self.clientIP(context))
            return Empty()
        }
        router.register(Identity.logoutAll) { _, context in
            LogoutAllResponse(
                revokedSessions: try await accounts.logoutAll(try await accounts.authenticate(context.bearerToken), clientIP: Self.clientIP(context)))
        }
        router.register(Identity.getMe) { _, context in
            try await accounts.me(try await accounts.authenticate(context.bearerToken)).message
        }
        router.register(Identity.updateBusinessProfile) { request, context in
            try await accounts.updateBusinessProfile(
                request, claims: try await accounts.authenticate(context.bearerToken), clientIP: Self.clientIP(context)
            ).message
        }
        router.register(Identity.changePassword) { request, context in
            try await accounts.changePassword(request, claims: try await accounts.authenticate(context.bearerToken), clientIP: Self.clientIP(context))
            return Empty()
        }
        router.register(Identity.requestPasswordReset) { request, context in
            try await accounts.requestPasswordReset(request, clientIP: Self.clientIP(context))
            return AcknowledgedResponse.checkYourEmail
        }
        router.register(Identity.resetPassword) { request, context in
            try await accounts.resetPassword(request, clientIP: Self.clientIP(context))
            return Empty()
        }
        router.register(Identity.getSigningKeys) { _, _ in
            try await accounts.signingKeys()
        }
        router.register(Identity.introspectSession) { request, _ in
            IntrospectSessionResponse(try await accounts.introspect(request))
        }
        router.register(Identity.lookupUsers) { request, _ in
            UserDirectory(users: try await accounts.lookUp(request).map(\.summary))
        }
    }

    static func clientIP(_ context: CallContext) -> String? { context.endUserIP }
}
