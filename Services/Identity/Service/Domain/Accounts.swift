import AccessTokens
import Contracts
import Foundation
import Logging
import RPCCore
import ServiceRuntime

/// Identity's use cases: each method is one RPC's work, in domain words, with every write in one
/// transaction (emails included, through the outbox). They answer with records and domain values;
/// handlers decode, authenticate, and build the messages (`IdentityMessages`).
final class Accounts: Sendable {
    private let storage: any IdentityStorage
    private let hasher: PasswordHasher
    private let keys: SigningKeyRing
    private let composer: EmailComposer
    private let outboxWake: WakeSignal
    private let sessions: SessionRules
    private let throttle: LoginThrottlePolicy
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// Users as GetMe reads them; every write to a user row invalidates it (with PostgreSQL, on
    /// every replica: `usersChanged`).
    private let users = ReadThroughCache<String, UserRecord>()

    init(
        storage: any IdentityStorage, hasher: PasswordHasher, keys: SigningKeyRing, composer: EmailComposer, outboxWake: WakeSignal,
        sessions: SessionRules, throttle: LoginThrottlePolicy, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.storage = storage
        self.hasher = hasher
        self.keys = keys
        self.composer = composer
        self.outboxWake = outboxWake
        self.sessions = sessions
        self.throttle = throttle
        self.now = now
        self.logger = logger
    }

    /// Another replica wrote a user row: cached users may be stale.
    func usersChanged() {
        users.invalidate()
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
        try await storage.register(
            email: email, newUserID: UUID().uuidString.lowercased(), fullName: fullName, registration: registration, clientIP: clientIP, at: at
        ) { [composer] existing in
            if let existing, existing.emailVerifiedAt != nil { return .alreadyRegistered(composer.alreadyRegistered(to: existing.email)) }
            let token = SecretToken.generate()
            return .verification(composer.verification(to: existing?.email ?? email.description, name: fullName, token: token), token)
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
        let peeked = try Self.usable(try await storage.oneTimeToken(request.token, purpose: .verifyEmail), purpose: .verifyEmail, at: at)
        guard let user = try await storage.user(id: peeked.userID) else { throw IdentityError.tokenUnknown(purpose: .verifyEmail) }
        var passwordHash = peeked.registration?.passwordHash
        if let newPassword = request.newPassword {
            try PasswordPolicy.check(newPassword, for: try EmailAddress(user.email), field: "newPassword")
            passwordHash = try await hasher.hash(newPassword)
        }
        guard let passwordHash else { throw IdentityError.choosePasswordToVerify }
        let chosenNow = request.newPassword != nil
        try await storage.verify(
            token: request.token, userID: user.id, passwordHash: passwordHash, sessions: sessions,
            throttleSubject: LoginThrottleStore.subjects(email: try EmailAddress(user.email), clientIP: nil)[0], clientIP: clientIP, at: at,
            usable: { token in try Self.usable(token, purpose: .verifyEmail, at: at) },
            detail: { token, revoked in
                token.registration != nil && !chosenNow
                    ? "password from the registration that sent this link; \(revoked) sessions ended"
                    : "password chosen at verification; \(revoked) sessions ended"
            })
        let email = user.email
        users.invalidate()
        return email
    }

    func resendVerification(_ request: ResendVerificationRequest) async throws {
        let email = try EmailAddress(request.email)
        let at = now()
        let queued = try await storage.resendVerification(email: email, at: at) { [composer] user in
            let token = SecretToken.generate()
            return (composer.verification(to: user.email, name: user.fullName, token: token), token)
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
        let user = try await storage.user(email: email)
        let throttleState = try await storage.throttleState(subjects: subjects, policy: throttle, at: now())
        // Checked even when locked or unknown, so that every refusal takes the same time.
        let check = try await hasher.verify(request.password, against: user?.passwordHash)
        let at = now()
        if throttleState.accountLockedUntil != nil { try await Task.sleep(for: throttle.lockedAccountDelay) }
        let admitted = throttle.admits(throttleState, passwordMatches: user != nil && check.matches)
        if !admitted, user != nil, check.matches, let lockedUntil = throttleState.lockedUntil {
            try await storage.audit(
                .loginRefusedLocked, at: at, userID: user?.id, email: email.description, clientIP: clientIP,
                detail: "locked until \(lockedUntil.formatted(.iso8601))")
            throw IdentityError.badCredentials
        }
        // A wrong password counts against the account and the address even during a lock, so an
        // address cannot keep guessing a locked account without ever being locked itself.
        guard let user, check.matches else {
            try await storage.recordFailure(
                .loginFailed, subjects: subjects, policy: throttle, userID: user?.id, email: email.description, clientIP: clientIP, at: at)
            throw IdentityError.badCredentials
        }
        let rehash = check.needsRehash ? try await hasher.hash(request.password) : nil
        // The password was right, so telling the caller the address is unverified leaks nothing.
        let started = try await storage.signIn(user: user, throttleSubject: subjects[0], rehash: rehash, clientIP: clientIP, at: at)
        if rehash != nil { users.invalidate() }
        guard let (session, token) = started else { throw IdentityError.emailNotVerified }
        let access = try await issueAccessToken(for: user, sessionID: session.id, at: at)
        return SignIn(sessionToken: token.value, sessionExpiresAt: session.createdAt + sessions.absoluteLifetime, access: access, user: user)
    }

    func refreshAccessToken(_ request: SessionTokenRequest) async throws -> IssuedAccessToken {
        let at = now()
        guard
            let (user, sessionID) = try await storage.useSession(
                token: request.sessionToken, at: at,
                isLive: { [sessions] session in
                    sessions.isLive(createdAt: session.createdAt, lastUsedAt: session.lastUsedAt, revokedAt: session.revokedAt, at: at)
                })
        else { throw IdentityError.sessionInvalid }
        return try await issueAccessToken(for: user, sessionID: sessionID, at: at)
    }

    func logout(_ request: SessionTokenRequest, clientIP: String?) async throws {
        let at = now()
        try await storage.endSession(token: request.sessionToken, clientIP: clientIP, at: at)
    }

    /// Returns how many sessions ended.
    func logoutAll(_ claims: AccessTokenClaims, clientIP: String?) async throws -> Int {
        let at = now()
        return try await storage.endSessions(userID: claims.subject, rules: sessions, clientIP: clientIP, at: at)
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
        let user = try await users.value(for: claims.subject) { [storage] in try await storage.user(id: claims.subject) }
        guard let user else { throw IdentityError.userGone }
        return user
    }

    func updateBusinessProfile(_ profile: BusinessProfile, claims: AccessTokenClaims, clientIP: String?) async throws -> UserRecord {
        let profile = try BusinessProfileRules.validated(profile)
        let at = now()
        defer { users.invalidate() }
        guard let user = try await storage.updateProfile(userID: claims.subject, profile: profile, clientIP: clientIP, at: at) else {
            throw IdentityError.userGone
        }
        return user
    }

    // MARK: Passwords

    /// Throttled like signing in (the same counters): a stolen access token is not a licence to
    /// guess the password that would take the account over.
    func changePassword(_ request: ChangePasswordRequest, claims: AccessTokenClaims, clientIP: String?) async throws {
        guard let user = try await storage.user(id: claims.subject) else { throw IdentityError.userGone }
        let email = try EmailAddress(user.email)
        try PasswordPolicy.check(request.newPassword, for: email, field: "newPassword")
        guard TextLength.isAtMost(request.oldPassword, characters: PasswordPolicy.maximumLength) else { throw IdentityError.wrongPassword }
        let subjects = LoginThrottleStore.subjects(email: email, clientIP: clientIP)
        let throttleState = try await storage.throttleState(subjects: subjects, policy: throttle, at: now())
        let matches = try await hasher.verify(request.oldPassword, against: user.passwordHash).matches
        let at = now()
        if throttleState.accountLockedUntil != nil { try await Task.sleep(for: throttle.lockedAccountDelay) }
        let admitted = throttle.admits(throttleState, passwordMatches: matches)
        guard matches else {
            try await storage.recordFailure(
                .passwordChangeFailed, subjects: subjects, policy: throttle, userID: user.id, email: user.email, clientIP: clientIP, at: at)
            throw admitted ? IdentityError.wrongPassword : IdentityError.tooManyAttempts
        }
        guard admitted else { throw IdentityError.tooManyAttempts }
        let newHash = try await hasher.hash(request.newPassword)
        try await storage.changePassword(
            user: user, passwordHash: newHash, keepingSession: claims.sessionID, sessions: sessions, throttleSubject: subjects[0],
            notice: composer.passwordChanged(to: user.email), clientIP: clientIP, at: at)
        users.invalidate()
        outboxWake.signal()
    }

    /// Records the request, whatever the address, and answers: the same work for a known and
    /// an unknown address, so the answer's timing tells nothing. The outbox sender looks the
    /// address up afterwards (`preparePasswordResets`).
    func requestPasswordReset(_ request: RequestPasswordResetRequest, clientIP: String?) async throws {
        let email = try EmailAddress(request.email)
        let at = now()
        try await storage.recordPasswordResetRequest(email: email, clientIP: clientIP, at: at)
        outboxWake.signal()
    }

    /// Turns recorded reset requests into reset emails for the addresses that have an account
    /// (within the address's email limit); the rest are dropped. Returns how many it took.
    func preparePasswordResets() async throws -> Int {
        try await storage.preparePasswordResets(limit: 50, at: now()) { [composer] user in
            let token = SecretToken.generate()
            return (composer.passwordReset(to: user.email, token: token), token)
        }
    }

    func resetPassword(_ request: ResetPasswordRequest, clientIP: String?) async throws {
        // The token is looked at first (without using it) so the password can be checked against the right email.
        let at = now()
        let token = try Self.usable(try await storage.oneTimeToken(request.token, purpose: .resetPassword), purpose: .resetPassword, at: at)
        guard let user = try await storage.user(id: token.userID) else { throw IdentityError.tokenUnknown(purpose: .resetPassword) }
        try PasswordPolicy.check(request.newPassword, for: try EmailAddress(user.email), field: "newPassword")
        let newHash = try await hasher.hash(request.newPassword)
        try await storage.resetPassword(
            token: request.token, userID: user.id, passwordHash: newHash, sessions: sessions,
            throttleSubject: LoginThrottleStore.subjects(email: try EmailAddress(user.email), clientIP: nil)[0],
            notice: composer.passwordChanged(to: user.email), clientIP: clientIP, at: at,
            usable: { token in try Self.usable(token, purpose: .resetPassword, at: at) })
        users.invalidate()
        outboxWake.signal()
    }

    // MARK: For other services

    func signingKeys() async throws -> JSONWebKeySet { try await keys.published() }

    /// The users with these ids or addresses, by id; unknown ones are left out.
    func lookUp(_ request: LookupUsersRequest) async throws -> [UserRecord] {
        guard request.userIds.count <= 100 else { throw IdentityError.invalid(field: "userIds", reason: "may hold at most 100 ids") }
        guard request.emails.count <= 100 else { throw IdentityError.invalid(field: "emails", reason: "may hold at most 100 addresses") }
        let ids = Array(Set(request.userIds.filter { $0.utf8.count <= 64 }))
        // An address that cannot be one matches nobody, like an unknown one.
        let emails = request.emails.compactMap { try? EmailAddress($0) }
        let found = try await storage.users(ids: ids, emails: emails)
        return Dictionary(found.map { ($0.id, $0) }) { first, _ in first }.values.sorted { $0.id < $1.id }
    }

    /// The session's user and when it ends, if it is live.
    func introspect(_ request: SessionTokenRequest) async throws -> LiveSession? {
        let at = now()
        guard
            let (user, session) = try await storage.liveSession(
                token: request.sessionToken,
                isLive: { [sessions] session in
                    sessions.isLive(createdAt: session.createdAt, lastUsedAt: session.lastUsedAt, revokedAt: session.revokedAt, at: at)
                })
        else { return nil }
        return LiveSession(user: user, endsAt: sessions.endsAt(createdAt: session.createdAt, lastUsedAt: session.lastUsedAt))
    }

    /// The link if it may be used at `at`, or why not.
    private static func usable(_ token: OneTimeToken?, purpose: OneTimeToken.Purpose, at: Date) throws(IdentityError) -> OneTimeToken {
        guard let token else { throw .tokenUnknown(purpose: purpose) }
        try token.check(at: at)
        return token
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
