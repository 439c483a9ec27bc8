import Foundation

/// A token sent by email (verification or password reset): single use, valid for a day.
struct OneTimeToken: Sendable, Equatable {
    enum Purpose: String, Sendable, Equatable {
        case verifyEmail = "verify_email"
        case resetPassword = "reset_password"

        /// How the user knows it: "email verification link".
        var noun: String {
            switch self {
            case .verifyEmail: "email verification"
            case .resetPassword: "password reset"
            }
        }

        /// What to do when the link is unknown or expired.
        var retry: String {
            switch self {
            case .verifyEmail: "ask for a new one with ResendVerification"
            case .resetPassword: "ask for a new one with RequestPasswordReset"
            }
        }

        /// What to do when the link was used already.
        var afterUse: String {
            switch self {
            case .verifyEmail: "your address is verified, so sign in"
            case .resetPassword: "sign in with your new password, or ask for a new link with RequestPasswordReset"
            }
        }
    }

    static let lifetime: TimeInterval = 24 * 3600

    let purpose: Purpose
    let userID: String
    let expiresAt: Date
    let usedAt: Date?
    /// Set when a newer token of the same purpose replaced this one.
    let supersededAt: Date?
    /// For a verification link sent at registration: what that registration chose.
    var registration: Registration? = nil

    /// The password (hash) and name a registration chose, applied when its link is followed, so
    /// that whoever owns the mailbox ends up with the password they chose.
    struct Registration: Sendable, Equatable {
        var passwordHash: String
        var fullName: String?
    }

    /// Whether the token may be used at `now`, or why not.
    func check(at now: Date) throws(IdentityError) {
        if usedAt != nil { throw .tokenUsed(purpose: purpose) }
        if supersededAt != nil || now >= expiresAt { throw .tokenExpired(purpose: purpose) }
    }
}
