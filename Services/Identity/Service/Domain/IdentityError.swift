import RPCCore

/// What identity refuses, in its own words; `rpcError` is the one place these become Connect codes.
enum IdentityError: RPCErrorConvertible, Equatable {
    case invalid(field: String, reason: String)
    /// Unknown email, wrong password or a locked account: deliberately one answer.
    case badCredentials
    case emailNotVerified
    case tokenUnknown(purpose: OneTimeToken.Purpose)
    case tokenUsed(purpose: OneTimeToken.Purpose)
    case tokenExpired(purpose: OneTimeToken.Purpose)
    case sessionInvalid
    case accessTokenMissing
    case accessToken(String)
    case userGone
    case wrongPassword
    case tooManyAttempts
    case choosePasswordToVerify
    case busy

    var rpcError: RPCError {
        switch self {
        case .invalid(let field, let reason):
            RPCError(.invalidArgument, "\(field) \(reason)")
        case .badCredentials:
            RPCError(.unauthenticated, "the email or password is wrong")
        case .emailNotVerified:
            RPCError(
                .failedPrecondition,
                "verify your email address first: follow the link in the email we sent; to get a new one, use ResendVerification")
        case .tokenUnknown(let purpose):
            RPCError(.notFound, "this \(purpose.noun) link is not valid; \(purpose.retry)")
        case .tokenUsed(let purpose):
            RPCError(.failedPrecondition, "this \(purpose.noun) link has already been used; \(purpose.afterUse)")
        case .tokenExpired(let purpose):
            RPCError(.failedPrecondition, "this \(purpose.noun) link has expired; \(purpose.retry)")
        case .sessionInvalid:
            RPCError(.unauthenticated, "the session has ended or is not valid; sign in again")
        case .accessTokenMissing:
            RPCError(.unauthenticated, "this call needs an access token: send 'authorization: Bearer <access token>' from Login")
        case .accessToken(let message):
            RPCError(.unauthenticated, message)
        case .userGone:
            RPCError(.unauthenticated, "the account no longer exists; sign in again")
        case .wrongPassword:
            RPCError(.permissionDenied, "the current password is wrong")
        case .choosePasswordToVerify:
            RPCError(
                .failedPrecondition,
                "this link was sent on request, not with your registration: choose a password (newPassword, 12 to 256 characters) to finish verifying"
            )
        case .tooManyAttempts:
            RPCError(.resourceExhausted, "too many wrong passwords: wait a few minutes, or reset your password from the sign-in page")
        case .busy:
            RPCError(.unavailable, "too many sign-ins are being processed; try again in a few seconds")
        }
    }
}
