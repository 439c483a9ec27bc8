import AccessTokens
import ServiceRuntime

/// Writes identity's emails. Links point at the configured public base URL (the console), with the
/// token in the fragment so it never reaches a server log.
struct EmailComposer: Sendable {
    let publicBaseURL: String
    let from: String

    func verification(to email: String, name: String, token: SecretToken) -> EmailMessage {
        EmailMessage(
            from: from, to: email, subject: "Verify your email address",
            body: """
                Hello \(name),

                please confirm that this is your email address by opening this link:

                \(publicBaseURL)/verify-email#token=\(token.value)

                The link works once and expires in 24 hours. If you did not create an account, ignore this email.
                """)
    }

    /// To a verified account's address when someone registers it again.
    func alreadyRegistered(to email: String) -> EmailMessage {
        EmailMessage(
            from: from, to: email, subject: "You already have an account",
            body: """
                Hello,

                someone (probably you) tried to create an account with this email address, but you already have one.
                Sign in at \(publicBaseURL)/login, or reset your password at \(publicBaseURL)/forgot-password.

                If this was not you, ignore this email: nothing has changed.
                """)
    }

    func passwordReset(to email: String, token: SecretToken) -> EmailMessage {
        EmailMessage(
            from: from, to: email, subject: "Reset your password",
            body: """
                Hello,

                to choose a new password, open this link:

                \(publicBaseURL)/reset-password#token=\(token.value)

                The link works once and expires in 24 hours. If you did not ask for this, ignore this email.
                """)
    }

    func passwordChanged(to email: String) -> EmailMessage {
        EmailMessage(
            from: from, to: email, subject: "Your password was changed",
            body: """
                Hello,

                the password of your account was just changed, and your other sessions were signed out.
                If this was not you, reset your password at \(publicBaseURL)/forgot-password now.
                """)
    }
}
