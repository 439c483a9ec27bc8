import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceRuntime

/// identity's storage in PostgreSQL, shared by any number of replicas. Transactions run at READ
/// COMMITTED; what SQLite's single writer made safe is made safe here by:
/// - an email link's row locked (`FOR UPDATE`) while it is used: a link works once;
/// - transaction advisory locks on an address (registering, resending) and on each throttle
///   subject (counting a failure), so check-then-write rules see no concurrent writer: one
///   account per mailbox (the unique `email_key` index stays as the backstop), the email limits
///   per address, and failure counts that lose no failure;
/// - the outbox and the reset requests taken with `FOR UPDATE SKIP LOCKED` (the outbox with a
///   lease), so each email is sent by one replica and each request handled once;
/// - an advisory lock on the signing keys, so replicas starting together make one first key.
/// Advisory locks are taken address, then subjects in order, so they cannot deadlock.
/// Every write to a user row is announced on `usersChannel`; every replica's user cache listens.
struct PostgresIdentityStorage: IdentityStorage {
    let database: PostgresBackend
    static let usersChannel = "identity_users"

    private var logger: Logger { database.logger }

    static let migrations = [
        PostgresMigration(
            "identity v1: users, links, sessions, keys, throttling, outbox, reset requests, audit",
            [
                """
                CREATE TABLE "user" (
                    id text PRIMARY KEY, email text NOT NULL, email_key text NOT NULL, full_name text NOT NULL, password_hash text NOT NULL,
                    email_verified_at timestamptz, company_name text, company_size text, country text, job_title text, use_case text,
                    created_at timestamptz NOT NULL, password_changed_at timestamptz NOT NULL, duplicate_of text REFERENCES "user"(id))
                """,
                // One mailbox, one account: addresses compare case-insensitively.
                #"CREATE UNIQUE INDEX user_by_email_key ON "user" (email_key) WHERE duplicate_of IS NULL"#,
                // Email links: only the SHA-256 of the token is kept; a verification link carries its registration.
                """
                CREATE TABLE one_time_token (
                    token_hash text PRIMARY KEY, purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
                    user_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE, created_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL, used_at timestamptz, superseded_at timestamptz, password_hash text, full_name text)
                """,
                "CREATE INDEX one_time_token_by_user ON one_time_token (user_id, purpose)",
                """
                CREATE TABLE session (
                    id text PRIMARY KEY, token_hash text NOT NULL UNIQUE, user_id text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
                    created_at timestamptz NOT NULL, last_used_at timestamptz NOT NULL, revoked_at timestamptz, client_ip text)
                """,
                "CREATE INDEX session_by_user ON session (user_id)",
                // Access-token signing keys; a retired key stays published while its tokens may live.
                """
                CREATE TABLE signing_key (
                    kid text PRIMARY KEY, private_key bytea NOT NULL, created_at timestamptz NOT NULL, retired_at timestamptz)
                """,
                // Failed sign-ins per 'account:<email>' and per 'ip:<address>'.
                """
                CREATE TABLE login_throttle (
                    subject text PRIMARY KEY, failures integer NOT NULL, last_failure_at timestamptz NOT NULL, locked_until timestamptz)
                """,
                // Transactional outbox: written with the change that causes the email, sent later (leased while sending).
                """
                CREATE TABLE email_outbox (
                    id text PRIMARY KEY, kind text NOT NULL, recipient text NOT NULL, subject text NOT NULL, body text NOT NULL,
                    created_at timestamptz NOT NULL, attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz NOT NULL,
                    sent_at timestamptz, failed_at timestamptz, last_error text, lease_until timestamptz)
                """,
                "CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL",
                "CREATE INDEX email_outbox_by_recipient ON email_outbox (lower(recipient), kind, created_at)",
                """
                CREATE TABLE audit_event (
                    id bigserial PRIMARY KEY, at timestamptz NOT NULL, event text NOT NULL, user_id text, email text, client_ip text, detail text)
                """,
                "CREATE INDEX audit_event_by_user ON audit_event (user_id, at)",
                // Reset requests, queued whatever the address and looked at by the outbox sender.
                """
                CREATE TABLE password_reset_request (
                    id bigserial PRIMARY KEY, email text NOT NULL, client_ip text, requested_at timestamptz NOT NULL)
                """
            ]),
        // The trace of the call that queued an email, so its delivery's span links back to it.
        PostgresMigration("identity v2: outbox rows remember their trace", ["ALTER TABLE email_outbox ADD COLUMN trace_parent text"])
    ]

    // MARK: Users

    func user(id: String) async throws -> UserRecord? {
        try await Self.users(database.client.query(#"\#(unescaped: Self.userColumns) WHERE id = \#(id)"#, logger: logger)).first
    }

    func user(email: EmailAddress) async throws -> UserRecord? {
        try await Self.users(
            database.client.query(#"\#(unescaped: Self.userColumns) WHERE email_key = \#(email.key) AND duplicate_of IS NULL"#, logger: logger)
        ).first
    }

    func users(ids: [String], emails: [EmailAddress]) async throws -> [UserRecord] {
        try await Self.users(
            database.client.query(
                #"\#(unescaped: Self.userColumns) WHERE id = ANY(\#(ids)) OR (email_key = ANY(\#(emails.map(\.key))) AND duplicate_of IS NULL)"#,
                logger: logger))
    }

    func duplicateAccounts() async throws -> [(id: String, email: String, keptID: String)] {
        try await database.client.query(
            #"SELECT id, email, duplicate_of FROM "user" WHERE duplicate_of IS NOT NULL ORDER BY email_key"#, logger: logger
        )
        .collect().map { try $0.decode((String, String, String).self) }
    }

    // MARK: Registration and verification

    func register(
        email: EmailAddress, newUserID: String, fullName: String, registration: OneTimeToken.Registration, clientIP: String?, at: Date,
        mail: @Sendable (UserRecord?) -> RegistrationMail
    ) async throws {
        try await database.transaction { [logger] connection in
            try await Self.lock(connection, "identity-address:\(email.key)", logger: logger)
            let existing = try await Self.users(
                connection.query(#"\#(unescaped: Self.userColumns) WHERE email_key = \#(email.key) AND duplicate_of IS NULL"#, logger: logger)
            ).first
            switch (existing, mail(existing)) {
            case (let existing?, .alreadyRegistered(let message)):
                try await Self.enqueue(connection, message, kind: .account, at: at, logger: logger)
                try await Self.audit(
                    connection, .registerForExistingEmail, at: at, userID: existing.id, email: existing.email, clientIP: clientIP, logger: logger)
            case (let existing?, .verification(let message, let token)):
                guard try await Self.enqueue(connection, message, kind: .account, at: at, logger: logger) else { return }
                try await Self.storeToken(connection, token, .verifyEmail, userID: existing.id, registration: registration, at: at, logger: logger)
                try await Self.audit(
                    connection, .registerForExistingEmail, at: at, userID: existing.id, email: existing.email, clientIP: clientIP,
                    detail: "unverified: a new link with this registration's password", logger: logger)
            case (nil, .verification(let message, let token)):
                try await connection.query(
                    """
                    INSERT INTO "user" (id, email, email_key, full_name, password_hash, created_at, password_changed_at)
                    VALUES (\(newUserID), \(email.description), \(email.key), \(fullName), \(registration.passwordHash), \(at), \(at))
                    """, logger: logger)
                try await Self.storeToken(connection, token, .verifyEmail, userID: newUserID, registration: registration, at: at, logger: logger)
                try await Self.enqueue(connection, message, kind: .account, at: at, logger: logger)
                try await Self.audit(connection, .registered, at: at, userID: newUserID, email: email.description, clientIP: clientIP, logger: logger)
            case (nil, .alreadyRegistered):
                return
            }
        }
    }

    func oneTimeToken(_ value: String, purpose: OneTimeToken.Purpose) async throws -> OneTimeToken? {
        guard SecretToken.isWellFormed(value) else { return nil }
        return try await Self.tokens(
            database.client.query(Self.tokenQuery(hash: SecretToken.hash(value), purpose: purpose, locking: false), logger: logger), purpose: purpose
        ).first
    }

    func verify(
        token value: String, userID: String, passwordHash: String, sessions: SessionRules, throttleSubject: String, clientIP: String?,
        at: Date, usable: @Sendable (OneTimeToken?) throws -> OneTimeToken, detail: @Sendable (OneTimeToken, Int) -> String
    ) async throws {
        try await database.transaction { [logger] connection in
            let token = try usable(try await Self.lockedToken(connection, value, .verifyEmail, logger: logger))
            try await Self.markUsed(connection, value, at: at, logger: logger)
            try await connection.query(
                """
                UPDATE "user" SET email_verified_at = coalesce(email_verified_at, \(at)), password_hash = \(passwordHash),
                    password_changed_at = \(at), full_name = coalesce(\(token.registration?.fullName), full_name)
                WHERE id = \(userID)
                """, logger: logger)
            let revoked = try await Self.revokeAll(connection, userID: userID, keeping: nil, rules: sessions, at: at, logger: logger)
            try await connection.query("DELETE FROM login_throttle WHERE subject = \(throttleSubject)", logger: logger)
            let email = try await Self.users(connection.query(#"\#(unescaped: Self.userColumns) WHERE id = \#(userID)"#, logger: logger)).first?.email
            try await Self.audit(
                connection, .verified, at: at, userID: userID, email: email, clientIP: clientIP, detail: detail(token, revoked), logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.usersChannel, logger: logger)
        }
    }

    func resendVerification(email: EmailAddress, at: Date, mail: @Sendable (UserRecord) -> (EmailMessage, SecretToken)) async throws -> Bool {
        try await database.transaction { [logger] connection in
            try await Self.lock(connection, "identity-address:\(email.key)", logger: logger)
            guard
                let user = try await Self.users(
                    connection.query(#"\#(unescaped: Self.userColumns) WHERE email_key = \#(email.key) AND duplicate_of IS NULL"#, logger: logger)
                ).first, user.emailVerifiedAt == nil
            else { return false }
            let (message, token) = mail(user)
            guard try await Self.enqueue(connection, message, kind: .account, at: at, logger: logger) else { return false }
            try await Self.storeToken(connection, token, .verifyEmail, userID: user.id, registration: nil, at: at, logger: logger)
            return true
        }
    }

    // MARK: Signing in and sessions

    func throttleState(subjects: [String], policy: LoginThrottlePolicy, at: Date) async throws -> LoginThrottleState {
        var state = LoginThrottleState()
        for (index, subject) in subjects.enumerated() {
            guard
                let (failures, lastFailure, lockedUntil) = try await database.client.query(
                    "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE subject = \(subject)", logger: logger
                ).collect().first.map({ try $0.decode((Int32, Date, Date?).self) })
            else { continue }
            let lock = lockedUntil.flatMap { $0 > at ? $0 : nil }
            if index == 0 {
                state.accountLockedUntil = lock
            } else {
                state.clientLockedUntil = lock
                state.clientFailures = policy.currentFailures(Int(failures), lastFailure: lastFailure, at: at)
            }
        }
        return state
    }

    func audit(_ event: AuditEvent, at: Date, userID: String?, email: String?, clientIP: String?, detail: String?) async throws {
        try await database.transaction { [logger] connection in
            try await Self.audit(connection, event, at: at, userID: userID, email: email, clientIP: clientIP, detail: detail, logger: logger)
        }
    }

    func recordFailure(
        _ event: AuditEvent, subjects: [String], policy: LoginThrottlePolicy, userID: String?, email: String, clientIP: String?, at: Date
    ) async throws {
        try await database.transaction { [logger] connection in
            try await Self.audit(connection, event, at: at, userID: userID, email: email, clientIP: clientIP, logger: logger)
            var locked = false
            for subject in subjects.sorted() {
                try await Self.lock(connection, "identity-throttle:\(subject)", logger: logger)
                let previous =
                    try await connection.query("SELECT failures, last_failure_at FROM login_throttle WHERE subject = \(subject)", logger: logger)
                    .collect().first.map { row in
                        let (failures, lastFailure) = try row.decode((Int32, Date).self)
                        return policy.currentFailures(Int(failures), lastFailure: lastFailure, at: at)
                    } ?? 0
                let failures = previous + 1
                let until = policy.lockedUntil(failures: failures, lastFailure: at)
                locked = locked || until != nil
                try await connection.query(
                    """
                    INSERT INTO login_throttle (subject, failures, last_failure_at, locked_until) VALUES (\(subject), \(Int32(failures)), \(at), \(until))
                    ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at,
                        locked_until = excluded.locked_until
                    """, logger: logger)
            }
            if locked { try await Self.audit(connection, .locked, at: at, userID: userID, email: email, clientIP: clientIP, logger: logger) }
        }
    }

    func signIn(user: UserRecord, throttleSubject: String, rehash: String?, clientIP: String?, at: Date) async throws
        -> (SessionStore.Session, SecretToken)?
    {
        try await database.transaction { [logger] connection -> (SessionStore.Session, SecretToken)? in
            try await connection.query("DELETE FROM login_throttle WHERE subject = \(throttleSubject)", logger: logger)
            if let rehash {
                try await connection.query(#"UPDATE "user" SET password_hash = \#(rehash) WHERE id = \#(user.id)"#, logger: logger)
                try await PostgresBackend.notify(connection, channel: Self.usersChannel, logger: logger)
            }
            guard user.emailVerifiedAt != nil else { return nil }
            let token = SecretToken.generate()
            let session = SessionStore.Session(id: UUID().uuidString.lowercased(), userID: user.id, createdAt: at, lastUsedAt: at)
            try await connection.query(
                """
                INSERT INTO session (id, token_hash, user_id, created_at, last_used_at, client_ip)
                VALUES (\(session.id), \(token.hash), \(user.id), \(at), \(at), \(clientIP))
                """, logger: logger)
            try await Self.audit(connection, .loginSucceeded, at: at, userID: user.id, email: user.email, clientIP: clientIP, logger: logger)
            return (session, token)
        }
    }

    func useSession(token: String, at: Date, isLive: @Sendable (SessionStore.Session) -> Bool) async throws -> (UserRecord, String)? {
        guard let (user, session) = try await liveSession(token: token, isLive: isLive) else { return nil }
        try await database.client.query("UPDATE session SET last_used_at = \(at) WHERE id = \(session.id)", logger: logger)
        return (user, session.id)
    }

    func liveSession(token: String, isLive: @Sendable (SessionStore.Session) -> Bool) async throws -> (UserRecord, SessionStore.Session)? {
        guard SecretToken.isWellFormed(token),
            let session = try await Self.sessions(
                database.client.query(
                    "SELECT id, user_id, created_at, last_used_at, revoked_at FROM session WHERE token_hash = \(SecretToken.hash(token))",
                    logger: logger)
            ).first, isLive(session), let user = try await user(id: session.userID)
        else { return nil }
        return (user, session)
    }

    func endSession(token: String, clientIP: String?, at: Date) async throws {
        guard SecretToken.isWellFormed(token) else { return }
        try await database.transaction { [logger] connection in
            guard
                let userID = try await connection.query(
                    "UPDATE session SET revoked_at = \(at) WHERE token_hash = \(SecretToken.hash(token)) AND revoked_at IS NULL RETURNING user_id",
                    logger: logger
                ).collect().first.map({ try $0.decode(String.self) })
            else { return }
            try await Self.audit(connection, .logout, at: at, userID: userID, clientIP: clientIP, logger: logger)
        }
    }

    func endSessions(userID: String, rules: SessionRules, clientIP: String?, at: Date) async throws -> Int {
        try await database.transaction { [logger] connection in
            let count = try await Self.revokeAll(connection, userID: userID, keeping: nil, rules: rules, at: at, logger: logger)
            try await Self.audit(connection, .logoutAll, at: at, userID: userID, clientIP: clientIP, detail: "\(count) sessions", logger: logger)
            return count
        }
    }

    // MARK: Profile and passwords

    func updateProfile(userID: String, profile: BusinessProfile, clientIP: String?, at: Date) async throws -> UserRecord? {
        try await database.transaction { [logger] connection -> UserRecord? in
            guard
                let user = try await Self.users(
                    connection.query(
                        """
                        UPDATE "user" SET company_name = \(profile.companyName), company_size = \(profile.companySize), country = \(profile.country),
                            job_title = \(profile.jobTitle), use_case = \(profile.useCase)
                        WHERE id = \(userID) RETURNING \(unescaped: Self.userColumnList)
                        """, logger: logger)
                ).first
            else { return nil }
            try await Self.audit(connection, .profileUpdated, at: at, userID: user.id, email: user.email, clientIP: clientIP, logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.usersChannel, logger: logger)
            return user
        }
    }

    func changePassword(
        user: UserRecord, passwordHash: String, keepingSession: String, sessions: SessionRules, throttleSubject: String, notice: EmailMessage,
        clientIP: String?, at: Date
    ) async throws {
        try await database.transaction { [logger] connection in
            try await connection.query("DELETE FROM login_throttle WHERE subject = \(throttleSubject)", logger: logger)
            try await connection.query(
                #"UPDATE "user" SET password_hash = \#(passwordHash), password_changed_at = \#(at) WHERE id = \#(user.id)"#, logger: logger)
            let revoked = try await Self.revokeAll(connection, userID: user.id, keeping: keepingSession, rules: sessions, at: at, logger: logger)
            try await Self.enqueue(connection, notice, kind: .notice, at: at, logger: logger)
            try await Self.audit(
                connection, .passwordChanged, at: at, userID: user.id, email: user.email, clientIP: clientIP,
                detail: "\(revoked) other sessions ended", logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.usersChannel, logger: logger)
        }
    }

    func recordPasswordResetRequest(email: EmailAddress, clientIP: String?, at: Date) async throws {
        try await database.client.query(
            "INSERT INTO password_reset_request (email, client_ip, requested_at) VALUES (\(email.description), \(clientIP), \(at))", logger: logger)
    }

    func preparePasswordResets(limit: Int, at: Date, mail: @Sendable (UserRecord) -> (EmailMessage, SecretToken)) async throws -> Int {
        try await database.transaction { [logger] connection in
            // Each request is taken by one replica: the others skip the rows it holds.
            let requests = try await connection.query(
                """
                DELETE FROM password_reset_request WHERE id IN (
                    SELECT id FROM password_reset_request ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING email, client_ip
                """, logger: logger
            ).collect().map { try $0.decode((String, String?).self) }
            for (address, clientIP) in requests {
                guard let email = try? EmailAddress(address),
                    let user = try await Self.users(
                        connection.query(#"\#(unescaped: Self.userColumns) WHERE email_key = \#(email.key) AND duplicate_of IS NULL"#, logger: logger)
                    ).first
                else { continue }
                let (message, token) = mail(user)
                guard try await Self.enqueue(connection, message, kind: .passwordReset, at: at, logger: logger) else { continue }
                try await Self.storeToken(connection, token, .resetPassword, userID: user.id, registration: nil, at: at, logger: logger)
                try await Self.audit(
                    connection, .passwordResetRequested, at: at, userID: user.id, email: user.email, clientIP: clientIP, logger: logger)
            }
            return requests.count
        }
    }

    func resetPassword(
        token value: String, userID: String, passwordHash: String, sessions: SessionRules, throttleSubject: String, notice: EmailMessage,
        clientIP: String?, at: Date, usable: @Sendable (OneTimeToken?) throws -> OneTimeToken
    ) async throws {
        try await database.transaction { [logger] connection in
            _ = try usable(try await Self.lockedToken(connection, value, .resetPassword, logger: logger))
            try await Self.markUsed(connection, value, at: at, logger: logger)
            // Following the emailed link proves the address too.
            try await connection.query(
                """
                UPDATE "user" SET password_hash = \(passwordHash), password_changed_at = \(at), email_verified_at = coalesce(email_verified_at, \(at))
                WHERE id = \(userID)
                """, logger: logger)
            let revoked = try await Self.revokeAll(connection, userID: userID, keeping: nil, rules: sessions, at: at, logger: logger)
            try await connection.query("DELETE FROM login_throttle WHERE subject = \(throttleSubject)", logger: logger)
            try await Self.enqueue(connection, notice, kind: .notice, at: at, logger: logger)
            let email = try await Self.users(connection.query(#"\#(unescaped: Self.userColumns) WHERE id = \#(userID)"#, logger: logger)).first?.email
            try await Self.audit(
                connection, .passwordReset, at: at, userID: userID, email: email, clientIP: clientIP, detail: "\(revoked) sessions ended",
                logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.usersChannel, logger: logger)
        }
    }

    // MARK: The outbox

    func leaseDueEmails(at: Date, until: Date, limit: Int, from: String) async throws -> [EmailOutbox.Pending] {
        try await database.client.query(
            """
            UPDATE email_outbox SET lease_until = \(until) WHERE id IN (
                SELECT id FROM email_outbox
                WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= \(at) AND (lease_until IS NULL OR lease_until <= \(at))
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, recipient, subject, body, attempts, next_attempt_at, trace_parent
            """, logger: logger
        ).collect().map { row in
            let (id, recipient, subject, body, attempts, due, trace) = try row.decode((String, String, String, String, Int32, Date, String?).self)
            return (
                due,
                EmailOutbox.Pending(
                    message: EmailMessage(from: from, to: recipient, subject: subject, body: body, id: id), attempts: Int(attempts),
                    traceParent: trace)
            )
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    func nextEmailDue() async throws -> Date? {
        try await database.client.query(
            "SELECT min(next_attempt_at) FROM email_outbox WHERE sent_at IS NULL AND failed_at IS NULL", logger: logger
        ).collect().first.flatMap { try $0.decode(Date?.self) }
    }

    func markEmailSent(id: String, at: Date) async throws {
        try await database.client.query(
            "UPDATE email_outbox SET sent_at = \(at), body = '', attempts = attempts + 1, last_error = NULL, lease_until = NULL WHERE id = \(id)",
            logger: logger)
    }

    func markEmailFailed(id: String, error: String, retryAt: Date?, at: Date) async throws {
        if let retryAt {
            try await database.client.query(
                """
                UPDATE email_outbox SET attempts = attempts + 1, last_error = \(error), next_attempt_at = \(retryAt), lease_until = NULL WHERE id = \(id)
                """, logger: logger)
        } else {
            try await database.client.query(
                """
                UPDATE email_outbox SET attempts = attempts + 1, last_error = \(error), failed_at = \(at), body = '', lease_until = NULL WHERE id = \(id)
                """, logger: logger)
        }
    }

    // MARK: Signing keys

    func signingKeys(retiredAfter: Date) async throws -> [StoredSigningKey] {
        try await database.client.query(
            "SELECT kid, private_key, retired_at FROM signing_key WHERE retired_at IS NULL OR retired_at > \(retiredAfter) ORDER BY created_at DESC",
            logger: logger
        ).collect().map { row in
            let (kid, privateKey, retiredAt) = try row.decode((String, ByteBuffer, Date?).self)
            return StoredSigningKey(keyID: kid, privateKey: Data(privateKey.readableBytesView), retiredAt: retiredAt)
        }
    }

    func addSigningKeyIfNone(_ key: SigningKey, at: Date) async throws {
        try await database.transaction { [logger] connection in
            try await Self.lock(connection, "identity-signing-keys", logger: logger)
            guard try await connection.query("SELECT 1 FROM signing_key WHERE retired_at IS NULL", logger: logger).collect().isEmpty else { return }
            try await Self.insertKey(connection, key, at: at, logger: logger)
        }
    }

    func rotateSigningKey(to key: SigningKey, at: Date, forgetBefore: Date) async throws {
        try await database.transaction { [logger] connection in
            try await Self.lock(connection, "identity-signing-keys", logger: logger)
            try await connection.query("UPDATE signing_key SET retired_at = \(at) WHERE retired_at IS NULL", logger: logger)
            try await Self.insertKey(connection, key, at: at, logger: logger)
            try await connection.query("DELETE FROM signing_key WHERE retired_at < \(forgetBefore)", logger: logger)
        }
    }

    // MARK: Inside the caller's transaction

    private static func lock(_ connection: PostgresConnection, _ name: String, logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(name), 0))", logger: logger)
    }

    /// Queues `message`; false (queuing nothing) when the address's limit for `kind` is reached
    /// (`EmailOutbox.minimumGap`, `EmailOutbox.hourlyLimit`), counted under the address's lock.
    @discardableResult
    private static func enqueue(
        _ connection: PostgresConnection, _ message: EmailMessage, kind: EmailOutbox.Kind, at: Date, logger: Logger
    ) async throws -> Bool {
        if kind != .notice {
            try await lock(connection, "identity-outbox:\(kind.rawValue):\(message.to.lowercased())", logger: logger)
            let recent = try await connection.query(
                """
                SELECT created_at FROM email_outbox
                WHERE lower(recipient) = \(message.to.lowercased()) AND kind = \(kind.rawValue) AND created_at > \(at - 3600)
                """, logger: logger
            ).collect().map { try $0.decode(Date.self) }
            if recent.count >= EmailOutbox.hourlyLimit || recent.contains(where: { $0 > at - EmailOutbox.minimumGap }) { return false }
        }
        try await connection.query(
            """
            INSERT INTO email_outbox (id, kind, recipient, subject, body, created_at, next_attempt_at, trace_parent)
            VALUES (\(message.id), \(kind.rawValue), \(message.to), \(message.subject), \(message.body), \(at), \(at), \(TraceContext.traceParent()))
            """, logger: logger)
        return true
    }

    private static func storeToken(
        _ connection: PostgresConnection, _ token: SecretToken, _ purpose: OneTimeToken.Purpose, userID: String,
        registration: OneTimeToken.Registration?, at: Date, logger: Logger
    ) async throws {
        try await connection.query(
            """
            UPDATE one_time_token SET superseded_at = \(at)
            WHERE user_id = \(userID) AND purpose = \(purpose.rawValue) AND used_at IS NULL AND superseded_at IS NULL
            """, logger: logger)
        try await connection.query(
            """
            INSERT INTO one_time_token (token_hash, purpose, user_id, created_at, expires_at, password_hash, full_name)
            VALUES (\(token.hash), \(purpose.rawValue), \(userID), \(at), \(at + OneTimeToken.lifetime), \(registration?.passwordHash),
                    \(registration?.fullName))
            """, logger: logger)
    }

    /// The link, its row locked for the rest of the transaction.
    private static func lockedToken(
        _ connection: PostgresConnection, _ value: String, _ purpose: OneTimeToken.Purpose, logger: Logger
    ) async throws -> OneTimeToken? {
        guard SecretToken.isWellFormed(value) else { return nil }
        return try await tokens(
            connection.query(tokenQuery(hash: SecretToken.hash(value), purpose: purpose, locking: true), logger: logger), purpose: purpose
        )
        .first
    }

    private static func markUsed(_ connection: PostgresConnection, _ value: String, at: Date, logger: Logger) async throws {
        try await connection.query("UPDATE one_time_token SET used_at = \(at) WHERE token_hash = \(SecretToken.hash(value))", logger: logger)
    }

    private static func tokenQuery(hash: String, purpose: OneTimeToken.Purpose, locking: Bool) -> PostgresQuery {
        """
        SELECT user_id, expires_at, used_at, superseded_at, password_hash, full_name FROM one_time_token
        WHERE token_hash = \(hash) AND purpose = \(purpose.rawValue) \(unescaped: locking ? "FOR UPDATE" : "")
        """
    }

    private static func tokens(_ rows: PostgresRowSequence, purpose: OneTimeToken.Purpose) async throws -> [OneTimeToken] {
        try await rows.collect().map { row in
            let (userID, expiresAt, usedAt, supersededAt, passwordHash, fullName) = try row.decode(
                (String, Date, Date?, Date?, String?, String?).self)
            return OneTimeToken(
                purpose: purpose, userID: userID, expiresAt: expiresAt, usedAt: usedAt, supersededAt: supersededAt,
                registration: passwordHash.map { OneTimeToken.Registration(passwordHash: $0, fullName: fullName) })
        }
    }

    /// Revokes every live session of the user except `keeping`; returns how many.
    private static func revokeAll(
        _ connection: PostgresConnection, userID: String, keeping: String?, rules: SessionRules, at: Date, logger: Logger
    ) async throws -> Int {
        try await connection.query(
            """
            UPDATE session SET revoked_at = \(at)
            WHERE user_id = \(userID) AND revoked_at IS NULL AND id IS DISTINCT FROM \(keeping)
                AND created_at > \(at - rules.absoluteLifetime) AND last_used_at > \(at - rules.idleLifetime)
            RETURNING id
            """, logger: logger
        ).collect().count
    }

    private static func audit(
        _ connection: PostgresConnection, _ event: AuditEvent, at: Date, userID: String? = nil, email: String? = nil, clientIP: String? = nil,
        detail: String? = nil, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO audit_event (at, event, user_id, email, client_ip, detail) VALUES (\(at), \(event.rawValue), \(userID), \(email), \(clientIP), \(detail))
            """, logger: logger)
    }

    private static func insertKey(_ connection: PostgresConnection, _ key: SigningKey, at: Date, logger: Logger) async throws {
        let privateKey = ByteBuffer(bytes: key.privateKey.rawRepresentation)
        try await connection.query(
            "INSERT INTO signing_key (kid, private_key, created_at) VALUES (\(key.keyID), \(privateKey), \(at))", logger: logger)
    }

    private static let userColumnList =
        "id, email, full_name, password_hash, email_verified_at, company_name, company_size, country, job_title, use_case, created_at"
    private static let userColumns = #"SELECT \#(userColumnList) FROM "user""#

    private static func users(_ rows: PostgresRowSequence) async throws -> [UserRecord] {
        try await rows.collect().map { row in
            let (id, email, fullName, passwordHash, verifiedAt, company, size, country, jobTitle, useCase, createdAt) = try row.decode(
                (String, String, String, String, Date?, String?, String?, String?, String?, String?, Date).self)
            return UserRecord(
                id: id, email: email, fullName: fullName, passwordHash: passwordHash, emailVerifiedAt: verifiedAt,
                profile: company.map {
                    BusinessProfile(
                        companyName: $0, companySize: size ?? "", country: country ?? "", jobTitle: jobTitle ?? "", useCase: useCase ?? "")
                }, createdAt: createdAt)
        }
    }

    private static func sessions(_ rows: PostgresRowSequence) async throws -> [SessionStore.Session] {
        try await rows.collect().map { row in
            let (id, userID, createdAt, lastUsedAt, revokedAt) = try row.decode((String, String, Date, Date, Date?).self)
            return SessionStore.Session(id: id, userID: userID, createdAt: createdAt, lastUsedAt: lastUsedAt, revokedAt: revokedAt)
        }
    }
}
