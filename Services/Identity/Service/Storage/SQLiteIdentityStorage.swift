import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import GRDB
import ServiceRuntime

/// identity's storage in its own SQLite file (the embedded default). SQLite runs one write
/// transaction at a time, so a link used inside one is used once, and throttle counters are
/// read and written without another writer in between.
struct SQLiteIdentityStorage: IdentityStorage {
    let pool: DatabasePool

    /// One process owns a SQLite file, so the outbox leases an earlier process left are void.
    init(pool: DatabasePool) throws {
        self.pool = pool
        try pool.write { db in try db.execute(sql: "UPDATE email_outbox SET lease_until = NULL WHERE lease_until IS NOT NULL") }
    }

    func user(id: String) async throws -> UserRecord? {
        try await pool.tracedRead { db in try UserRecord.fetch(db, id: id) }
    }

    func user(email: EmailAddress) async throws -> UserRecord? {
        try await pool.tracedRead { db in try UserRecord.fetch(db, email: email) }
    }

    func users(ids: [String], emails: [EmailAddress]) async throws -> [UserRecord] {
        try await pool.tracedRead { db in
            try ids.compactMap { try UserRecord.fetch(db, id: $0) } + emails.compactMap { try UserRecord.fetch(db, email: $0) }
        }
    }

    func duplicateAccounts() async throws -> [(id: String, email: String, keptID: String)] {
        try await pool.tracedRead { db in try IdentityMigrations.duplicateAccounts(db) }
    }

    func register(
        email: EmailAddress, newUserID: String, fullName: String, registration: OneTimeToken.Registration, clientIP: String?, at: Date,
        mail: @Sendable (UserRecord?) -> RegistrationMail
    ) async throws {
        let trace = TraceContext.traceParent()
        try await pool.tracedWrite { db in
            let existing = try UserRecord.fetch(db, email: email)
            switch (existing, mail(existing)) {
            case (let existing?, .alreadyRegistered(let message)):
                try EmailOutbox.enqueue(db, message, kind: .account, at: at, trace: trace)
                try AuditLog.record(db, .registerForExistingEmail, at: at, userID: existing.id, email: existing.email, clientIP: clientIP)
            case (let existing?, .verification(let message, let token)):
                // Unverified: whoever registered first may not own the mailbox. This registration
                // gets a link of its own, which sets the password chosen here; the earlier links end.
                guard try EmailOutbox.enqueue(db, message, kind: .account, at: at, trace: trace) else { return }
                try TokenStore.store(db, token, .verifyEmail, userID: existing.id, registration: registration, at: at)
                try AuditLog.record(
                    db, .registerForExistingEmail, at: at, userID: existing.id, email: existing.email, clientIP: clientIP,
                    detail: "unverified: a new link with this registration's password")
            case (nil, .verification(let message, let token)):
                try UserRecord.insert(db, id: newUserID, email: email, fullName: fullName, passwordHash: registration.passwordHash, at: at)
                try TokenStore.store(db, token, .verifyEmail, userID: newUserID, registration: registration, at: at)
                try EmailOutbox.enqueue(db, message, kind: .account, at: at, trace: trace)
                try AuditLog.record(db, .registered, at: at, userID: newUserID, email: email.description, clientIP: clientIP)
            case (nil, .alreadyRegistered):
                return
            }
        }
    }

    func oneTimeToken(_ value: String, purpose: OneTimeToken.Purpose) async throws -> OneTimeToken? {
        try await pool.tracedRead { db in try TokenStore.find(db, value, purpose: purpose) }
    }

    func verify(
        token value: String, userID: String, passwordHash: String, sessions: SessionRules, throttleSubject: String, clientIP: String?,
        at: Date, usable: @Sendable (OneTimeToken?) throws -> OneTimeToken, detail: @Sendable (OneTimeToken, Int) -> String
    ) async throws {
        try await pool.tracedWrite { db in
            let token = try usable(try TokenStore.find(db, value, purpose: .verifyEmail))
            try TokenStore.markUsed(db, value, at: at)
            try UserRecord.markVerified(db, id: userID, passwordHash: passwordHash, fullName: token.registration?.fullName, at: at)
            let revoked = try SessionStore.revokeAll(db, userID: userID, rules: sessions, at: at)
            try LoginThrottleStore.clear(db, subject: throttleSubject)
            let email = try UserRecord.fetch(db, id: userID)?.email
            try AuditLog.record(db, .verified, at: at, userID: userID, email: email, clientIP: clientIP, detail: detail(token, revoked))
        }
    }

    func resendVerification(email: EmailAddress, at: Date, mail: @Sendable (UserRecord) -> (EmailMessage, SecretToken)) async throws -> Bool {
        let trace = TraceContext.traceParent()
        return try await pool.tracedWrite { db -> Bool in
            guard let user = try UserRecord.fetch(db, email: email), user.emailVerifiedAt == nil else { return false }
            // The limit is checked before the token is stored, so a refused resend leaves the last link working.
            let (message, token) = mail(user)
            guard try EmailOutbox.enqueue(db, message, kind: .account, at: at, trace: trace) else { return false }
            try TokenStore.store(db, token, .verifyEmail, userID: user.id, at: at)
            return true
        }
    }

    func throttleState(subjects: [String], policy: LoginThrottlePolicy, at: Date) async throws -> LoginThrottleState {
        try await pool.tracedRead { db in try LoginThrottleStore.state(db, subjects: subjects, policy: policy, at: at) }
    }

    func audit(_ event: AuditEvent, at: Date, userID: String?, email: String?, clientIP: String?, detail: String?) async throws {
        try await pool.tracedWrite { db in try AuditLog.record(db, event, at: at, userID: userID, email: email, clientIP: clientIP, detail: detail) }
    }

    func recordFailure(
        _ event: AuditEvent, subjects: [String], policy: LoginThrottlePolicy, userID: String?, email: String, clientIP: String?, at: Date
    ) async throws {
        try await pool.tracedWrite { db in
            try AuditLog.record(db, event, at: at, userID: userID, email: email, clientIP: clientIP)
            if try LoginThrottleStore.recordFailure(db, subjects: subjects, policy: policy, at: at) {
                try AuditLog.record(db, .locked, at: at, userID: userID, email: email, clientIP: clientIP)
            }
        }
    }

    func signIn(user: UserRecord, throttleSubject: String, rehash: String?, clientIP: String?, at: Date) async throws
        -> (SessionStore.Session, SecretToken)?
    {
        try await pool.tracedWrite { db -> (SessionStore.Session, SecretToken)? in
            try LoginThrottleStore.clear(db, subject: throttleSubject)
            if let rehash { try UserRecord.replaceHash(db, id: user.id, passwordHash: rehash) }
            guard user.emailVerifiedAt != nil else { return nil }
            let started = try SessionStore.create(db, userID: user.id, clientIP: clientIP, at: at)
            try AuditLog.record(db, .loginSucceeded, at: at, userID: user.id, email: user.email, clientIP: clientIP)
            return started
        }
    }

    func useSession(token: String, at: Date, isLive: @Sendable (SessionStore.Session) -> Bool) async throws -> (UserRecord, String)? {
        try await pool.tracedWrite { db -> (UserRecord, String)? in
            guard let session = try SessionStore.find(db, token: token), isLive(session), let user = try UserRecord.fetch(db, id: session.userID)
            else { return nil }
            try SessionStore.touch(db, id: session.id, at: at)
            return (user, session.id)
        }
    }

    func liveSession(token: String, isLive: @Sendable (SessionStore.Session) -> Bool) async throws -> (UserRecord, SessionStore.Session)? {
        try await pool.tracedRead { db -> (UserRecord, SessionStore.Session)? in
            guard let session = try SessionStore.find(db, token: token), isLive(session), let user = try UserRecord.fetch(db, id: session.userID)
            else { return nil }
            return (user, session)
        }
    }

    func endSession(token: String, clientIP: String?, at: Date) async throws {
        try await pool.tracedWrite { db in
            guard let session = try SessionStore.find(db, token: token), session.revokedAt == nil else { return }
            try SessionStore.revoke(db, id: session.id, at: at)
            try AuditLog.record(db, .logout, at: at, userID: session.userID, clientIP: clientIP)
        }
    }

    func endSessions(userID: String, rules: SessionRules, clientIP: String?, at: Date) async throws -> Int {
        try await pool.tracedWrite { db in
            let count = try SessionStore.revokeAll(db, userID: userID, rules: rules, at: at)
            try AuditLog.record(db, .logoutAll, at: at, userID: userID, clientIP: clientIP, detail: "\(count) sessions")
            return count
        }
    }

    func updateProfile(userID: String, profile: BusinessProfile, clientIP: String?, at: Date) async throws -> UserRecord? {
        try await pool.tracedWrite { db -> UserRecord? in
            guard try UserRecord.updateProfile(db, id: userID, profile), let user = try UserRecord.fetch(db, id: userID) else { return nil }
            try AuditLog.record(db, .profileUpdated, at: at, userID: user.id, email: user.email, clientIP: clientIP)
            return user
        }
    }

    func changePassword(
        user: UserRecord, passwordHash: String, keepingSession: String, sessions: SessionRules, throttleSubject: String, notice: EmailMessage,
        clientIP: String?, at: Date
    ) async throws {
        let trace = TraceContext.traceParent()
        try await pool.tracedWrite { db in
            try LoginThrottleStore.clear(db, subject: throttleSubject)
            try UserRecord.changePassword(db, id: user.id, passwordHash: passwordHash, at: at)
            let revoked = try SessionStore.revokeAll(db, userID: user.id, keeping: keepingSession, rules: sessions, at: at)
            try EmailOutbox.enqueue(db, notice, kind: .notice, at: at, trace: trace)
            try AuditLog.record(
                db, .passwordChanged, at: at, userID: user.id, email: user.email, clientIP: clientIP, detail: "\(revoked) other sessions ended")
        }
    }

    func recordPasswordResetRequest(email: EmailAddress, clientIP: String?, at: Date) async throws {
        try await pool.tracedWrite { db in try PasswordResetRequests.record(db, email: email, clientIP: clientIP, at: at) }
    }

    func preparePasswordResets(limit: Int, at: Date, mail: @Sendable (UserRecord) -> (EmailMessage, SecretToken)) async throws -> Int {
        guard try await pool.read({ db in try PasswordResetRequests.any(db) }) else { return 0 }
        let trace = TraceContext.traceParent()
        return try await pool.tracedWrite { db -> Int in
            let requests = try PasswordResetRequests.take(db, limit: limit)
            for request in requests {
                guard let email = try? EmailAddress(request.email), let user = try UserRecord.fetch(db, email: email) else { continue }
                let (message, token) = mail(user)
                guard try EmailOutbox.enqueue(db, message, kind: .passwordReset, at: at, trace: trace) else { continue }
                try TokenStore.store(db, token, .resetPassword, userID: user.id, at: at)
                try AuditLog.record(db, .passwordResetRequested, at: at, userID: user.id, email: user.email, clientIP: request.clientIP)
            }
            return requests.count
        }
    }

    func resetPassword(
        token value: String, userID: String, passwordHash: String, sessions: SessionRules, throttleSubject: String, notice: EmailMessage,
        clientIP: String?, at: Date, usable: @Sendable (OneTimeToken?) throws -> OneTimeToken
    ) async throws {
        let trace = TraceContext.traceParent()
        try await pool.tracedWrite { db in
            _ = try usable(try TokenStore.find(db, value, purpose: .resetPassword))
            try TokenStore.markUsed(db, value, at: at)
            // Following the emailed link proves the address too.
            try UserRecord.resetPassword(db, id: userID, passwordHash: passwordHash, at: at)
            let revoked = try SessionStore.revokeAll(db, userID: userID, rules: sessions, at: at)
            try LoginThrottleStore.clear(db, subject: throttleSubject)
            try EmailOutbox.enqueue(db, notice, kind: .notice, at: at, trace: trace)
            let email = try UserRecord.fetch(db, id: userID)?.email
            try AuditLog.record(db, .passwordReset, at: at, userID: userID, email: email, clientIP: clientIP, detail: "\(revoked) sessions ended")
        }
    }

    func leaseDueEmails(at: Date, until: Date, limit: Int, from: String) async throws -> [EmailOutbox.Pending] {
        try await pool.tracedWrite { db in try EmailOutbox.leaseDue(db, at: at, until: until, limit: limit, from: from) }
    }

    func nextEmailDue() async throws -> Date? {
        try await pool.tracedRead { db in try EmailOutbox.nextDue(db) }
    }

    func markEmailSent(id: String, at: Date) async throws {
        try await pool.tracedWrite { db in try EmailOutbox.markSent(db, id: id, at: at) }
    }

    func markEmailFailed(id: String, error: String, retryAt: Date?, at: Date) async throws {
        try await pool.tracedWrite { db in try EmailOutbox.markFailedAttempt(db, id: id, error: error, retryAt: retryAt, at: at) }
    }

    func signingKeys(retiredAfter: Date) async throws -> [StoredSigningKey] {
        try await pool.tracedRead { db in try SigningKeyStore.keys(db, retiredAfter: retiredAfter) }
    }

    func addSigningKeyIfNone(_ key: SigningKey, at: Date) async throws {
        try await pool.tracedWrite { db in try SigningKeyStore.addIfNone(db, key, at: at) }
    }

    func rotateSigningKey(to key: SigningKey, at: Date, forgetBefore: Date) async throws {
        try await pool.tracedWrite { db in try SigningKeyStore.rotate(db, to: key, at: at, forgetBefore: forgetBefore) }
    }
}
