import AccessTokens
import Contracts
import Foundation
import ServiceRuntime

/// identity's storage: its reads, and each write as one transaction, emails included (they go
/// to the outbox in the transaction that causes them). The domain (`Accounts`) decides; what it
/// needs to know first is read inside the transaction and handed to its rule, passed in.
protocol IdentityStorage: Sendable {
    // MARK: Users

    func user(id: String) async throws -> UserRecord?
    func user(email: EmailAddress) async throws -> UserRecord?
    /// The users with these ids or addresses, in one read (unknown ones are left out; a user may appear twice).
    func users(ids: [String], emails: [EmailAddress]) async throws -> [UserRecord]
    /// Accounts found sharing a mailbox with an older one when addresses became case-insensitive.
    func duplicateAccounts() async throws -> [(id: String, email: String, keptID: String)]

    // MARK: Registration and verification

    /// A registration: a new user with a verification link, or an email to the address's
    /// account (`mail` decides which, from that account); nothing is written when the address's
    /// email limit is reached.
    func register(
        email: EmailAddress, newUserID: String, fullName: String, registration: OneTimeToken.Registration, clientIP: String?, at: Date,
        mail: @Sendable (_ existing: UserRecord?) -> RegistrationMail
    ) async throws

    /// The stored link of this purpose, whatever its state.
    func oneTimeToken(_ value: String, purpose: OneTimeToken.Purpose) async throws -> OneTimeToken?

    /// Uses the verification link (if `usable` accepts it as this transaction sees it): the
    /// address verified with `passwordHash`, every session ended, the account's throttle cleared.
    func verify(
        token value: String, userID: String, passwordHash: String, sessions: SessionRules, throttleSubject: String, clientIP: String?,
        at: Date, usable: @Sendable (OneTimeToken?) throws -> OneTimeToken, detail: @Sendable (OneTimeToken, _ revoked: Int) -> String
    ) async throws

    /// A new verification link for an unverified account; false when there is none or the limit is reached.
    func resendVerification(email: EmailAddress, at: Date, mail: @Sendable (UserRecord) -> (EmailMessage, SecretToken)) async throws -> Bool

    // MARK: Signing in and sessions

    func throttleState(subjects: [String], policy: LoginThrottlePolicy, at: Date) async throws -> LoginThrottleState
    func audit(_ event: AuditEvent, at: Date, userID: String?, email: String?, clientIP: String?, detail: String?) async throws
    /// A wrong password: audited as `event`, counted against every subject (and a lock audited).
    func recordFailure(
        _ event: AuditEvent, subjects: [String], policy: LoginThrottlePolicy, userID: String?, email: String, clientIP: String?, at: Date
    ) async throws
    /// The right password: the account's throttle cleared, the hash replaced when `rehash`, and
    /// a session started if the address is verified (nil otherwise).
    func signIn(user: UserRecord, throttleSubject: String, rehash: String?, clientIP: String?, at: Date) async throws
        -> (SessionStore.Session, SecretToken)?
    /// The session's user, the session marked used, if `isLive` accepts it.
    func useSession(token: String, at: Date, isLive: @Sendable (SessionStore.Session) -> Bool) async throws -> (UserRecord, String)?
    /// The same without marking it (introspection by other services).
    func liveSession(token: String, isLive: @Sendable (SessionStore.Session) -> Bool) async throws -> (UserRecord, SessionStore.Session)?
    func endSession(token: String, clientIP: String?, at: Date) async throws
    /// Ends every live session of the user; returns how many.
    func endSessions(userID: String, rules: SessionRules, clientIP: String?, at: Date) async throws -> Int

    // MARK: Profile and passwords

    /// nil when there is no such user.
    func updateProfile(userID: String, profile: BusinessProfile, clientIP: String?, at: Date) async throws -> UserRecord?
    func changePassword(
        user: UserRecord, passwordHash: String, keepingSession: String, sessions: SessionRules, throttleSubject: String, notice: EmailMessage,
        clientIP: String?, at: Date
    ) async throws
    func recordPasswordResetRequest(email: EmailAddress, clientIP: String?, at: Date) async throws
    /// Takes up to `limit` reset requests (each once, across replicas) and queues a reset link
    /// for each address with an account, within its limit; returns how many it took.
    func preparePasswordResets(limit: Int, at: Date, mail: @Sendable (UserRecord) -> (EmailMessage, SecretToken)) async throws -> Int
    /// Uses the reset link (if `usable` accepts it): the new password, the address proven, every session ended.
    func resetPassword(
        token value: String, userID: String, passwordHash: String, sessions: SessionRules, throttleSubject: String, notice: EmailMessage,
        clientIP: String?, at: Date, usable: @Sendable (OneTimeToken?) throws -> OneTimeToken
    ) async throws

    // MARK: The outbox

    /// Emails due at `at`, leased to the caller until `until` (each sent by one replica at a time).
    func leaseDueEmails(at: Date, until: Date, limit: Int, from: String) async throws -> [EmailOutbox.Pending]
    func nextEmailDue() async throws -> Date?
    func markEmailSent(id: String, at: Date) async throws
    func markEmailFailed(id: String, error: String, retryAt: Date?, at: Date) async throws

    // MARK: Signing keys

    /// Keys not retired, or retired after `retiredAfter`, newest first.
    func signingKeys(retiredAfter: Date) async throws -> [StoredSigningKey]
    /// Stores `key` as current if no key is.
    func addSigningKeyIfNone(_ key: SigningKey, at: Date) async throws
    /// Retires the current key, makes `key` current, forgets keys retired before `forgetBefore`.
    func rotateSigningKey(to key: SigningKey, at: Date, forgetBefore: Date) async throws
}

/// What a registration sends: "you already have an account", or a verification link.
enum RegistrationMail: Sendable {
    case alreadyRegistered(EmailMessage)
    case verification(EmailMessage, SecretToken)
}

/// A signing key as stored: its private key's raw bytes, and when it was retired.
struct StoredSigningKey: Sendable {
    var keyID: String
    var privateKey: Data
    var retiredAt: Date?
}
