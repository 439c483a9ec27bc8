import RPCCore

/// What a password must be: 12 to 256 characters, anything allowed, but not the email's name
/// part (NIST SP 800-63B: length over composition rules).
enum PasswordPolicy {
    static let minimumLength = 12
    static let maximumLength = 256

    static func check(_ password: String, for email: EmailAddress, field: String = "password") throws(IdentityError) {
        // The upper bound first: it bounds the bytes before any character is counted.
        guard TextLength.isAtMost(password, characters: maximumLength) else {
            throw .invalid(field: field, reason: "must be at most \(maximumLength) characters long")
        }
        guard password.count >= minimumLength else {
            throw .invalid(field: field, reason: "must be at least \(minimumLength) characters long")
        }
        // Very short name parts ("a@...") would forbid ordinary letters, so only meaningful ones count.
        if email.local.count >= 3, password.lowercased().contains(email.local.lowercased()) {
            throw .invalid(field: field, reason: "must not contain your email address's name part")
        }
    }
}
