import AccessTokens
import Contracts
import Foundation
import GRDB
import Logging
import RPCCore
import ServiceRuntime

/// Identity's use cases: each method is one RPC's work, in domain words, with every write in one
/// transaction (emails included, through the outbox). They answer with records and domain values;
/// handlers decode, authenticate, and build the messages (`IdentityMessages`).
final class Accounts: Sendable {
    private let pool: DatabasePool
    private let hasher: PasswordHasher
    private let keys: SigningKeyRing
    private let composer: EmailComposer
    private let outboxWake: WakeSignal
    private let sessions: SessionRules
    private let throttle: LoginThrottlePolicy
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// Users as GetMe reads them; every write to a user row invalidates it.
    private let users = ReadThroughCache<String, UserRecord>()

    init(
        pool: DatabasePool, hasher: PasswordHasher, keys: SigningKeyRing, composer: EmailComposer, outboxWake: WakeSignal,
        sessions: SessionRules, throttle: LoginThrottlePolicy, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.pool = pool
        self.hasher = hasher
        self.keys = keys
        self.composer = composer
        self.outboxWake = outboxWake
        self.sessions = sessions
        self.throttle = throttle
        self.now = now
        self.logger = logger
    }

    // MARK: Registration and verification

    /// Answers the same whether or not the address is taken (the caller says "check your email").
    func register(_ request: RegisterRequest, clientIP: String?) async throws {
        let email = try EmailAddress(request.email)
        let fullName = try BusinessProfileRules.text(request.fullName, field: "fullName", maximum: 200)
        try PasswordPolicy.check(request.password, for: email)
        // Hashed whether or not the address is taken, so both answers take the same time.
        let passwordHash = try await hasher.hash(request.password)
        let at = now()
        let registration = OneTimeToken.Registration(passwordHash: passwordHash, fullName: fullName)
        try await pool.write { [composer] db in
            if let existing = try UserRecord.fetch(db, email: email) {
                if existing.emailVerifiedAt != nil {
                    try EmailOutbox.enqueue(db, composer.alreadyRegistered(to: existing.email), kind: .account, at: at)
                    try AuditLog.record(db, .registerForExistingEmail, at: at, userID: existing.id, email: existing.email, clientIP: clientIP)
                    return
                }
                // Unverified: whoever registered first may not own the mailbox. This registration
                // gets a link of its own, which sets the password chosen here; the earlier links end.
                let token = SecretToken.generate()
                guard try EmailOutbox.enqueue(db, composer.verification(to: existing.email, name: fullName, token: token), kind: .account, at: at)
                else { return }
                try TokenStore.store(db, token, .verifyEmail, userID: existing.id, registration: registration, at: at)
                try AuditLog.record(
                    db, .registerForExistingEmail, at: at, userID: existing.id, email: existing.email, clientIP: clientIP,
                    detail: "unverified: a new link with this registration's password")
                return
            }
            let id = UUID().uuidString.lowercased()
            try UserRecord.insert(db, id: id, email: email, fullName: fullName, passwordHash: passwordHash, at: at)
            let token = try TokenStore.issue(db, .verifyEmail, userID: id, registration: registration, at: at)
            try EmailOutbox.enqueue(db, composer.verification(to: email.description, name: fullName, token: token), kind: .account, at: at)
            try AuditLog.record(db, .registered, at: at, userID: id, email: email.description, clientIP: clientIP)
        }
        outboxWake.signal()
    }

    /// Following a verification link proves the mailbox, and so ends with the mailbox's owner
    /// holding the password: the one their registration chose (carried by its link) or, for a
    /// link sent on request, one they choose now. Every earlier session ends, so an account
    /// someone else registered with the address is not theirs any more.
    /// Returns the verified address.
    func verifyEmail(_ request: VerifyEmailRequest, clientIP: String?) async throws -> String {
        let at = now()
        let (peeked, user) = try await pool.read { db -> (OneTimeToken, UserRecord) in
            let token = try OneTimeToken.usable(db, request.token, purpose: .verifyEmail, at: at)
            guard let user = try UserRecord.fetch(db, id: token.userID) else { throw IdentityError.tokenUnknown(purpose: .verifyEmail) }
            return (token, user)
        }
        var passwordHash = peeked.registration?.passwordHash
        if let newPassword = request.newPassword {
            try PasswordPolicy.check(newPassword, for: try EmailAddress(user.email), field: "newPassword")
            passwordHash = try await hasher.hash(newPassword)
        }
        guard let passwordHash else { throw IdentityError.choosePasswordToVerify }
        let email = try await pool.write { [sessions] db -> String in
            let token = try OneTimeToken.usable(db, request.token, purpose: .verifyEmail, at: at, consume: true)
            try UserRecord.markVerified(db, id: user.id, passwordHash: passwordHash, fullName: token.registration?.fullName, at: at)
            let revoked = try SessionStore.revokeAll(db, userID: user.id, rules: sessions, at: at)
            try LoginThrottleStore.clear(db, subject: LoginThrottleStore.subjects(email: try EmailAddress(user.email), clientIP: nil)[0])
            try AuditLog.record(
                db, .verified, at: at, userID: user.id, email: user.email, clientIP: clientIP,
                detail: token.registration != nil && request.newPassword == nil
                    ? "password from the registration that sent this link; \(revoked) sessions ended"
                    : "password chosen at verification; \(revoked) sessions ended")
            return user.email
        }
        users.invalidate()
        return email
    }

    func resendVerification(_ request: ResendVerificationRequest) async throws {
        let email = try EmailAddress(request.email)
        let at = now()
        let queued = try await pool.write { [composer] db -> Bool in
            guard let user = try UserRecord.fetch(db, email: email), user.emailVerifiedAt == nil else { return false }
            // The limit is checked before a token is made, so a refused resend leaves the last link working.
            let token = SecretToken.generate()
            guard try EmailOutbox.enqueue(db, composer.verification(to: user.email, name: user.fullName, token: token), kind: .account, at: at)
            else { return false }
            try TokenStore.store(db, token, .verifyEmail, userID: user.id, at: at)
            return true
        }
        if queued { outboxWake.signal() }
    }

    // MARK: Signing in

    func login(_ request: LoginRequest, clientIP: String?) async throws -> SignIn {
        let email = try EmailAddress(request.email)
        guard !request.password.isEmpty, TextLength.isAtMost(request.password, characters: PasswordPolicy.maximumLength) else {
            throw IdentityError.invalid(field: "password", reason: "must be 1 to \(PasswordPolicy.maximumLength) characters long")
        }
        let subjects = LoginThrottleStore.subjects(email: email, clientIP: clientIP)
        let (user, throttleState) = try await pool.read { [now, throttle] db in
            (try UserRecord.fetch(db, email: email), try LoginThrottleStore.state(db, subjects: subjects, policy: throttle, at: now()))
        }
        // Checked even when locked or unknown, so that every refusal takes the same time.
        let check = try await hasher.verify(request.password, against: user?.passwordHash)
        let at = now()
        if throttleState.accountLockedUntil != nil { try await Task.sleep(for: throttle.lockedAccountDelay) }
        let admitted = throttle.admits(throttleState, passwordMatches: user != nil && check.matches)
        if !admitted, user != nil, check.matches, let lockedUntil = throttleState.lockedUntil {
            try await pool.write { db in
                try AuditLog.record(
                    db, .loginRefusedLocked, at: at, userID: user?.id, email: email.description, clientIP: clientIP,
                    detail: "locked until \(lockedUntil.formatted(.iso8601))")
            }
            throw IdentityError.badCredentials
        }
        // A wrong password counts against the account and the address even during a lock, so an
        // address cannot keep guessing a locked account without ever being locked itself.
        guard let user, check.matches else {
            try await pool.write { [throttle] db in
                try AuditLog.record(db, .loginFailed, at: at, userID: user?.id, email: email.description, clientIP: clientIP)
                if try LoginThrottleStore.recordFailure(db, subjects: subjects, policy: throttle, at: at) {
                    try AuditLog.record(db, .locked, at: at, userID: user?.id, email: email.description, clientIP: clientIP)
                }
            }
            throw IdentityError.badCredentials
        }
        let rehash = check.needsRehash ? try await hasher.hash(request.password) : nil
        let started = try await pool.write { db -> (SessionStore.Session, SecretToken)? in
            try LoginThrottleStore.clear(db, subject: subjects[0])
            if let rehash {
                try UserRecord.replaceHash(db, id: user.id, passwordHash: rehash)
            }
            // The password was right, so telling the caller the address is unverified leaks nothing.
            guard user.emailVerifiedAt != nil else { return nil }
            let started = try SessionStore.create(db, userID: user.id, clientIP: clientIP, at: at)
            try AuditLog.record(db, .loginSucceeded, at: at, userID: user.id, email: user.email, clientIP: clientIP)
            return started
        }
        if rehash != nil { users.invalidate() }
        guard let (session, token) = started else { throw IdentityError.emailNotVerified }
        let access = try await issueAccessToken(for: user, sessionID: session.id, at: at)
        return SignIn(sessionToken: token.value, sessionExpiresAt: session.createdAt + sessions.absoluteLifetime, access: access, user: user)
    }

    func refreshAccessToken(_ request: SessionTokenRequest) async throws -> IssuedAccessToken {
        let at = now()
        let (user, sessionID) = try await pool.write { [sessions] db in
            guard let session = try SessionStore.find(db, token: request.sessionToken),
                sessions.isLive(createdAt: session.createdAt, lastUsedAt: session.lastUsedAt, revokedAt: session.revokedAt, at: at),
                let user = try UserRecord.fetch(db, id: session.userID)
            else { throw IdentityError.sessionInvalid }
            try SessionStore.touch(db, id: session.id, at: at)
            return (user, session.id)
        }
        return try await issueAccessToken(for: user, sessionID: sessionID, at: at)
    }

    func logout(_ request: SessionTokenRequest, clientIP: String?) async throws {
        let at = now()
        try await pool.write { db in
            guard let session = try SessionStore.find(db, token: request.sessionToken), session.revokedAt == nil else { return }
            try SessionStore.revoke(db, id: session.id, at: at)
            try AuditLog.record(db, .logout, at: at, userID: session.userID, clientIP: clientIP)
        }
    }

    /// Returns how many sessions ended.
    func logoutAll(_ claims: AccessTokenClaims, clientIP: String?) async throws -> Int {
        let at = now()
        let count = try await pool.write { [sessions] db in
            let count = try SessionStore.revokeAll(db, userID: claims.subject, rules: sessions, at: at)
            try AuditLog.record(db, .logoutAll, at: at, userID: claims.subject, clientIP: clientIP, detail: "\(count) sessions")
            return count
        }
        return count
    }

    // MARK: The signed-in user

    /// The claims of a valid access token.
    func authenticate(_ bearerToken: String?) async throws(IdentityError) -> AccessTokenClaims {
        guard let bearerToken, !bearerToken.isEmpty else { throw .accessTokenMissing }
        do {
            return try await keys.verify(bearerToken)
        } catch {
            throw .accessToken(error.message)
        }
    }

    func me(_ claims: AccessTokenClaims) async throws -> UserRecord {
        let user = try await users.value(for: claims.subject) { [pool] in
            try await pool.read { db in try UserRecord.fetch(db, id: claims.subject) }
        }
        guard let user else { throw IdentityError.userGone }
        return user
    }

    func updateBusinessProfile(_ profile: BusinessProfile, claims: AccessTokenClaims, clientIP: String?) async throws -> UserRecord {
        let profile = try BusinessProfileRules.validated(profile)
        let at = now()
        defer { users.invalidate() }
        return try await pool.write { db in
            guard try UserRecord.updateProfile(db, id: claims.subject, profile), let user = try UserRecord.fetch(db, id: claims.subject) else {
                throw IdentityError.userGone
            }
            try AuditLog.record(db, .profileUpdated, at: at, userID: user.id, email: user.email, clientIP: clientIP)
            return user
        }
    }

    // MARK: Passwords

    /// Throttled like signing in (the same counters): a stolen access token is not a licence to
    /// guess the password that would take the account over.
    func changePassword(_ request: ChangePasswordRequest, claims: AccessTokenClaims, clientIP: String?) async throws {
        guard let user = try await pool.read({ db in try UserRecord.fetch(db, id: claims.subject) }) else { throw IdentityError.userGone }
        let email = try EmailAddress(user.email)
        try PasswordPolicy.check(request.newPassword, for: email, field: "newPassword")
        guard TextLength.isAtMost(request.oldPassword, characters: PasswordPolicy.maximumLength) else { throw IdentityError.wrongPassword }
        let subjects = LoginThrottleStore.subjects(email: email, clientIP: clientIP)
        let throttleState = try await pool.read { [now, throttle] db in
            try LoginThrottleStore.state(db, subjects: subjects, policy: throttle, at: now())
        }
        let matches = try await hasher.verify(request.oldPassword, against: user.passwordHash).matches
        let at = now()
        if throttleState.accountLockedUntil != nil { try await Task.sleep(for: throttle.lockedAccountDelay) }
        let admitted = throttle.admits(throttleState, passwordMatches: matches)
        guard matches else {
            try await pool.write { [throttle] db in
                try AuditLog.record(db, .passwordChangeFailed, at: at, userID: user.id, email: user.email, clientIP: clientIP)
                if try LoginThrottleStore.recordFailure(db, subjects: subjects, policy: throttle, at: at) {
                    try AuditLog.record(db, .locked, at: at, userID: user.id, email: user.email, clientIP: clientIP)
                }
            }
            throw admitted ? IdentityError.wrongPassword : IdentityError.tooManyAttempts
        }
        guard admitted else { throw IdentityError.tooManyAttempts }
        let newHash = try await hasher.hash(request.newPassword)
        try await pool.write { [composer, sessions] db in
            try LoginThrottleStore.clear(db, subject: subjects[0])
            try UserRecord.changePassword(db, id: user.id, passwordHash: newHash, at: at)
            let revoked = try SessionStore.revokeAll(db, userID: user.id, keeping: claims.sessionID, rules: sessions, at: at)
            try EmailOutbox.enqueue(db, composer.passwordChanged(to: user.email), kind: .notice, at: at)
            try AuditLog.record(
                db, .passwordChanged, at: at, userID: user.id, email: user.email, clientIP: clientIP,
                detail: "\(revoked) other sessions ended")
        }
        users.invalidate()
        outboxWake.signal()
    }

    /// Records the request, whatever the address, and answers: the same work for a known and
    /// an unknown address, so the answer's timing tells nothing. The outbox sender looks the
    /// address up afterwards (`preparePasswordResets`).
    func requestPasswordReset(_ request: RequestPasswordResetRequest, clientIP: String?) async throws {
        let email = try EmailAddress(request.email)
        let at = now()
        try await pool.write { db in
            try PasswordResetRequests.record(db, email: email, clientIP: clientIP, at: at)
        }
        outboxWake.signal()
    }

    /// Turns recorded reset requests into reset emails for the addresses that have an account
    /// (within the address's email limit); the rest are dropped. Returns how many it took.
    func preparePasswordResets() async throws -> Int {
        let at = now()
        guard try await pool.read({ db in try PasswordResetRequests.any(db) }) else { return 0 }
        return try await pool.write { [composer] db -> Int in
            let requests = try PasswordResetRequests.take(db, limit: 50)
            for request in requests {
                guard let email = try? EmailAddress(request.email), let user = try UserRecord.fetch(db, email: email) else { continue }
                let token = SecretToken.generate()
                guard try EmailOutbox.enqueue(db, composer.passwordReset(to: user.email, token: token), kind: .passwordReset, at: at)
                else { continue }
                try TokenStore.store(db, token, .resetPassword, userID: user.id, at: at)
                try AuditLog.record(db, .passwordResetRequested, at: at, userID: user.id, email: user.email, clientIP: request.clientIP)
            }
            return requests.count
        }
    }

    func resetPassword(_ request: ResetPasswordRequest, clientIP: String?) async throws {
        // The token is looked at first (without using it) so the password can be checked against the right email.
        let at = now()
        let user = try await pool.read { db -> UserRecord in
            let token = try OneTimeToken.usable(db, request.token, purpose: .resetPassword, at: at)
            guard let user = try UserRecord.fetch(db, id: token.userID) else { throw IdentityError.tokenUnknown(purpose: .resetPassword) }
            return user
        }
        try PasswordPolicy.check(request.newPassword, for: try EmailAddress(user.email), field: "newPassword")
        let newHash = try await hasher.hash(request.newPassword)
        try await pool.write { [composer, sessions] db in
            _ = try OneTimeToken.usable(db, request.token, purpose: .resetPassword, at: at, consume: true)
            // Following the emailed link proves the address too.
            try UserRecord.resetPassword(db, id: user.id, passwordHash: newHash, at: at)
            let revoked = try SessionStore.revokeAll(db, userID: user.id, rules: sessions, at: at)
            try LoginThrottleStore.clear(db, subject: LoginThrottleStore.subjects(email: try EmailAddress(user.email), clientIP: nil)[0])
            try EmailOutbox.enqueue(db, composer.passwordChanged(to: user.email), kind: .notice, at: at)
            try AuditLog.record(
                db, .passwordReset, at: at, userID: user.id, email: user.email, clientIP: clientIP,
                detail: "\(revoked) sessions ended")
        }
        users.invalidate()
        outboxWake.signal()
    }

    // MARK: For other services

    func signingKeys() async -> JSONWebKeySet { await keys.published() }

    /// The users with these ids or addresses, by id; unknown ones are left out.
    func lookUp(_ request: LookupUsersRequest) async throws -> [UserRecord] {
        guard request.userIds.count <= 100 else { throw IdentityError.invalid(field: "userIds", reason: "may hold at most 100 ids") }
        guard request.emails.count <= 100 else { throw IdentityError.invalid(field: "emails", reason: "may hold at most 100 addresses") }
        let ids = Array(Set(request.userIds.filter { $0.utf8.count <= 64 }))
        // An address that cannot be one matches nobody, like an unknown one.
        let emails = request.emails.compactMap { try? EmailAddress($0) }
        let found = try await pool.read { db in
            try ids.compactMap { try UserRecord.fetch(db, id: $0) } + emails.compactMap { try UserRecord.fetch(db, email: $0) }
        }
        return Dictionary(found.map { ($0.id, $0) }) { first, _ in first }.values.sorted { $0.id < $1.id }
    }

    /// The session's user and when it ends, if it is live.
    func introspect(_ request: SessionTokenRequest) async throws -> LiveSession? {
        let at = now()
        return try await pool.read { [sessions] db in
            guard let session = try SessionStore.find(db, token: request.sessionToken),
                sessions.isLive(createdAt: session.createdAt, lastUsedAt: session.lastUsedAt, revokedAt: session.revokedAt, at: at),
                let user = try UserRecord.fetch(db, id: session.userID)
            else { return nil }
            return LiveSession(user: user, endsAt: sessions.endsAt(createdAt: session.createdAt, lastUsedAt: session.lastUsedAt))
        }
    }

    private func issueAccessToken(for user: UserRecord, sessionID: String, at: Date) async throws -> IssuedAccessToken {
        let expiresAt = at + sessions.accessTokenLifetime
        let claims = AccessTokenClaims(
            subject: user.id, email: user.email, emailVerified: user.emailVerifiedAt != nil,
            onboardingState: user.onboardingState, sessionID: sessionID, issuedAt: at, expiresAt: expiresAt)
        return IssuedAccessToken(token: try await keys.current().sign(claims), expiresAt: expiresAt)
    }
}

/// An access token signed for a session, and when it expires.
struct IssuedAccessToken: Sendable {
    var token: String
    var expiresAt: Date
}

/// What a sign-in gives the user: a session and a first access token.
struct SignIn: Sendable {
    var sessionToken: String
    var sessionExpiresAt: Date
    var access: IssuedAccessToken
    var user: UserRecord
}

/// A live session, as other services are told of it.
struct LiveSession: Sendable {
    var user: UserRecord
    var endsAt: Date
}

extension UserRecord {
    /// Where the user is in onboarding: the business profile is its last step.
    var onboardingState: OnboardingState { profile == nil ? .needsBusinessProfile : .complete }
}
