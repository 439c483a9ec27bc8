import ConnectTransport
import Contracts
import Foundation
import GRDB
import IdentityTestSupport
import RPCCore
import ServiceRuntime
import TestSupport
import Testing

@testable import IdentityService

/// Registering, verifying the address and signing in, over real HTTP/2 against identity in-process.
@Suite(.timeLimit(.minutes(3))) struct RegistrationTests {
    @Test(arguments: StorageBackend.allCases) func newUserRegistersVerifiesSignsInGivesProfileRefreshesAndLogsOut(backend: StorageBackend)
        async throws
    {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let client = identity.client
            let email = "Ada.Lovelace@Example.COM"

            let registered = try await client.call(
                Identity.register, RegisterRequest(email: email, password: "analytical engine notes", fullName: "Ada"))
            #expect(registered.message.contains("sent an email"))
            let verification = try #require(try await identity.waitForEmails(to: "Ada.Lovelace@example.com").first)
            #expect(verification.subject == "Verify your email address")
            #expect(verification.body.contains("http://127.0.0.1:7100/verify-email#token="))
            let token = try #require(verification.token)

            // Not verified yet: the right password gets a precondition error that says what to do.
            await #expect(throws: RPCError.self) {
                try await client.call(Identity.login, LoginRequest(email: email, password: "analytical engine notes"))
            }
            do {
                _ = try await client.call(Identity.login, LoginRequest(email: email, password: "analytical engine notes"))
            } catch let error as RPCError {
                #expect(error.code == .failedPrecondition && error.message.contains("ResendVerification"))
            }

            #expect(try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: token)).email == "Ada.Lovelace@example.com")
            let login = try await client.call(
                Identity.login,
                LoginRequest(
                    email: "  ada.lovelace@EXAMPLE.com ".replacingOccurrences(of: "ada.lovelace", with: "Ada.Lovelace"),
                    password: "analytical engine notes"))
            #expect(login.user.emailVerified && login.user.onboardingState == .needsBusinessProfile)
            #expect(login.sessionToken.count == 43)

            let me = try await client.call(Identity.getMe, Empty(), options: .init(bearerToken: login.accessToken))
            #expect(me.email == "Ada.Lovelace@example.com" && me.onboardingState == .needsBusinessProfile)

            let profile = BusinessProfile(
                companyName: " Analytical Ltd ", companySize: "COMPANY_SIZE_11_TO_50", country: "gb",
                jobTitle: "Engineer", useCase: "Ledgers\nand tables")
            let updated = try await client.call(Identity.updateBusinessProfile, profile, options: .init(bearerToken: login.accessToken))
            #expect(updated.onboardingState == .complete)
            #expect(
                updated.businessProfile
                    == BusinessProfile(
                        companyName: "Analytical Ltd", companySize: "COMPANY_SIZE_11_TO_50",
                        country: "GB", jobTitle: "Engineer", useCase: "Ledgers\nand tables"))

            let refreshed = try await client.call(Identity.refreshAccessToken, SessionTokenRequest(sessionToken: login.sessionToken))
            #expect(try await client.call(Identity.getMe, Empty(), options: .init(bearerToken: refreshed.accessToken)).onboardingState == .complete)

            _ = try await client.call(Identity.logout, SessionTokenRequest(sessionToken: login.sessionToken))
            await #expect(throws: RPCError(.unauthenticated, "the session has ended or is not valid; sign in again")) {
                try await client.call(Identity.refreshAccessToken, SessionTokenRequest(sessionToken: login.sessionToken))
            }

            let events = try await identity.store.query("SELECT event FROM audit_event ORDER BY id").split(separator: "\n").map(String.init)
            #expect(events == ["registered", "verified", "login_succeeded", "profile_updated", "logout"])
        }
    }

    @Test(arguments: StorageBackend.allCases) func verificationLinksWorkOnceExpireAfterADayAndAreReplacedByAResend(backend: StorageBackend)
        async throws
    {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let client = identity.client
            let email = "links@example.com"
            _ = try await client.call(Identity.register, RegisterRequest(email: email, password: IdentityHarness.password, fullName: "L"))
            let first = try #require(try await identity.waitForEmails(to: email)[0].token)

            // A resend within a minute sends nothing; after it, a new link replaces the first.
            _ = try await client.call(Identity.resendVerification, ResendVerificationRequest(email: email))
            identity.clock.advance(by: 61)
            _ = try await client.call(Identity.resendVerification, ResendVerificationRequest(email: email))
            let emails = try await identity.waitForEmails(to: email, count: 2)
            #expect(emails.count == 2)
            let second = try #require(emails[1].token)
            await #expect(
                throws: RPCError(.failedPrecondition, "this email verification link has expired; ask for a new one with ResendVerification")
            ) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: first))
            }

            identity.clock.advance(by: 24 * 3600 + 1)
            await #expect(
                throws: RPCError(.failedPrecondition, "this email verification link has expired; ask for a new one with ResendVerification")
            ) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: second))
            }
            _ = try await client.call(Identity.resendVerification, ResendVerificationRequest(email: email))
            let third = try #require(try await identity.waitForEmails(to: email, count: 3)[2].token)
            // A link sent on request finishes only with a password chosen now.
            await #expect(
                throws: RPCError(
                    .failedPrecondition,
                    "this link was sent on request, not with your registration: choose a password (newPassword, 12 to 256 characters) to finish verifying"
                )
            ) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: third))
            }
            _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: third, newPassword: "a password chosen at verification"))
            _ = try await client.call(Identity.login, LoginRequest(email: email, password: "a password chosen at verification"))
            await #expect(
                throws: RPCError(.failedPrecondition, "this email verification link has already been used; your address is verified, so sign in")
            ) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: third))
            }
            await #expect(throws: RPCError(.notFound, "this email verification link is not valid; ask for a new one with ResendVerification")) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: String(repeating: "A", count: 43)))
            }
            await #expect(throws: RPCError(.notFound, "this email verification link is not valid; ask for a new one with ResendVerification")) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: "not a token"))
            }
        }
    }

    /// Pre-registration takeover: an attacker registers the victim's address with the attacker's
    /// password; the victim registers later and verifies. The attacker's password must not survive,
    /// whether the victim follows the link of their own registration or asks for a new one.
    @Test(arguments: [false, true])
    func anAccountRegisteredBySomeoneElseEndsWithTheMailboxOwnersPassword(victimAsksForANewLink: Bool) async throws {
        try await withStarted(IdentityHarness.start()) { identity in
            let client = identity.client
            let email = "mailbox.owner@example.com"
            let attackerPassword = "the attacker's own passphrase", victimPassword = "the rightful owner's passphrase"
            _ = try await client.call(Identity.register, RegisterRequest(email: email, password: attackerPassword, fullName: "Attacker"))
            let attackersLink = try #require(try await identity.waitForEmails(to: email)[0].token)
            identity.clock.advance(by: 61)
            _ = try await client.call(Identity.register, RegisterRequest(email: email, password: victimPassword, fullName: "Victim"))
            let victimsLink = try #require(
                try await identity.waitForEmails(to: email, count: 2)[1].token, "the second registration gets a link of its own")
            await #expect(
                throws: RPCError(.failedPrecondition, "this email verification link has expired; ask for a new one with ResendVerification")
            ) {
                try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: attackersLink))
            }
            if victimAsksForANewLink {
                identity.clock.advance(by: 61)
                _ = try await client.call(Identity.resendVerification, ResendVerificationRequest(email: email))
                let newLink = try #require(try await identity.waitForEmails(to: email, count: 3)[2].token)
                await #expect(throws: RPCError.self) { try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: newLink)) }
                _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: newLink, newPassword: victimPassword))
            } else {
                _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: victimsLink))
            }
            await #expect(throws: RPCError(.unauthenticated, "the email or password is wrong")) {
                try await client.call(Identity.login, LoginRequest(email: email, password: attackerPassword))
            }
            let victim = try await client.call(Identity.login, LoginRequest(email: email, password: victimPassword))
            #expect(victim.user.emailVerified)
            if !victimAsksForANewLink { #expect(victim.user.fullName == "Victim") }
        }
    }

    /// One mailbox, one account: case variants of an address are the same account, get one email
    /// between them (the address's limit), and sign in with any spelling.
    @Test(arguments: StorageBackend.allCases) func caseVariantsOfAnAddressAreOneAccount(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let variants = [
                "Mixed.Case@example.com", "mixed.case@example.com", "MIXED.CASE@example.com", "Mixed.CASE@EXAMPLE.com", "mIxEd.cAsE@example.com"
            ]
            for variant in variants {
                _ = try await identity.client.call(
                    Identity.register, RegisterRequest(email: variant, password: IdentityHarness.password, fullName: "M"))
            }
            let users = try await identity.store.count(#"SELECT count(*) FROM "user""#)
            #expect(users == 1)
            let queued = try await identity.store.count("SELECT count(*) FROM email_outbox")
            #expect(queued == 1)
            let link = try #require(try await identity.waitForEmails(to: "Mixed.Case@example.com")[0].token)
            _ = try await identity.client.call(Identity.verifyEmail, VerifyEmailRequest(token: link))
            let login = try await identity.client.call(
                Identity.login, LoginRequest(email: "MIXED.case@example.com", password: IdentityHarness.password))
            #expect(login.user.email == "Mixed.Case@example.com", "the address keeps the case it was registered with")
        }
    }

    /// A database from before: two accounts whose addresses differ only in case. The migration
    /// keeps both, marks the newer as a duplicate (reported at start) and does not fail.
    @Test func theMigrationReportsAddressesThatDifferOnlyInCaseInsteadOfFailing() async throws {
        let directory = NSTemporaryDirectory() + "identity-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: directory + "/identity.sqlite")
        try IdentityMigrations.migrator.migrate(queue, upTo: "identity v1: users, tokens, sessions, keys, throttling, outbox, audit")
        try await queue.write { db in
            for (id, email, at) in [("old", "Dup@example.com", 1.0), ("new", "dup@example.com", 2.0), ("other", "other@example.com", 3.0)] {
                try db.execute(
                    sql: "INSERT INTO user (id, email, full_name, password_hash, created_at, password_changed_at) VALUES (?, ?, 'x', 'x', ?, ?)",
                    arguments: [id, email, at, at])
            }
        }
        try queue.close()
        // As a real deployment's would be: identity refuses a key-holding database others may read
        // (the umask another test's service set made this pass only when it ran after one).
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory + "/" + file)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
        try await withStarted(IdentityHarness.start(directory: directory)) { identity in
            let duplicates = try await identity.database().read { db in try IdentityMigrations.duplicateAccounts(db) }
            #expect(duplicates.map(\.id) == ["new"] && duplicates.map(\.keptID) == ["old"])
        }
    }

    @Test(arguments: StorageBackend.allCases) func resendsAreLimitedToOneAMinuteAndTenAnHour(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let email = "limits@example.com"
            _ = try await identity.client.call(Identity.register, RegisterRequest(email: email, password: IdentityHarness.password, fullName: "L"))
            for _ in 0..<15 {
                identity.clock.advance(by: 61)
                _ = try await identity.client.call(Identity.resendVerification, ResendVerificationRequest(email: email))
            }
            // Registration's email plus nine resends fill the hour's ten.
            let queued = try await identity.store.count("SELECT count(*) FROM email_outbox WHERE recipient = '\(email)'")
            #expect(queued == 10)
        }
    }

    @Test(arguments: StorageBackend.allCases) func registerResendAndResetAnswerTheSameForTakenAndFreeAddresses(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let taken = "taken@example.com"
            _ = try await identity.signedUpUser(taken)
            let url = "http://127.0.0.1:\(identity.port)/identity.v1.IdentityService/"
            func raw(_ method: String, _ body: String) async throws -> (Int, String) {
                let response = try await Curl.post(url + method, body: body, extra: ["--http2-prior-knowledge"])
                return (response.status, response.body)
            }
            for (method, template) in [
                ("Register", #"{"email":"%@","password":"another long passphrase","fullName":"X"}"#),
                ("ResendVerification", #"{"email":"%@"}"#), ("RequestPasswordReset", #"{"email":"%@"}"#)
            ] {
                // Past the one-email-a-minute limit, which would otherwise hold back the owner's notice.
                identity.clock.advance(by: 61)
                let forTaken = try await raw(method, template.replacingOccurrences(of: "%@", with: taken))
                let forFree = try await raw(method, template.replacingOccurrences(of: "%@", with: "free-\(method)@example.com"))
                #expect(forTaken == forFree, "\(method) answers differ")
                #expect(forTaken.0 == 200)
            }
            // The owner of the taken address hears about the attempt and the reset; the free address gets its verification.
            let ownerEmails = try await identity.waitForEmails(to: taken, count: 3)
            #expect(ownerEmails.map(\.subject) == ["Verify your email address", "You already have an account", "Reset your password"])
            #expect(!ownerEmails[1].body.contains("not confirmed"), "the owner's address is verified")
            #expect(try await identity.waitForEmails(to: "free-Register@example.com")[0].subject == "Verify your email address")
            #expect(identity.emails(to: "free-ResendVerification@example.com").isEmpty)
            #expect(identity.emails(to: "free-RequestPasswordReset@example.com").isEmpty)
        }
    }

    @Test func registrationTakesAboutAsLongForATakenAddressAsForAFreeOne() async throws {
        // A cost high enough that hashing dominates, as it does in production.
        try await withStarted(IdentityHarness.start(arguments: ["--scrypt-log-n", "14"])) { identity in
            _ = try await identity.signedUpUser("timing@example.com")
            // Alternated, so that load from tests running beside this one falls on both alike. Without
            // the decoy hashing, a taken address would answer in a small fraction of the time.
            var taken: [Duration] = []
            var free: [Duration] = []
            for round in 0..<9 {
                for (email, into) in [("timing@example.com", 0), ("timing-\(round)@example.com", 1)] {
                    let started = ContinuousClock.now
                    _ = try await identity.client.call(
                        Identity.register, RegisterRequest(email: email, password: IdentityHarness.password, fullName: "T"))
                    if into == 0 { taken.append(ContinuousClock.now - started) } else { free.append(ContinuousClock.now - started) }
                }
            }
            let ratio = taken.sorted()[4] / free.sorted()[4]
            #expect(ratio > 0.5 && ratio < 2, "taken \(taken) vs free \(free)")
        }
    }

    /// identity's database holds its private signing keys and the maildrop holds link tokens:
    /// both are for identity's user only, and a key store others could read stops the start.
    @Test func identitysFilesArePrivateAndAKeyStoreOthersCanReadIsRefused() async throws {
        umask(0o022)
        let directory = NSTemporaryDirectory() + "identity-\(UUID().uuidString)"
        let identity = try await IdentityHarness.start(directory: directory)
        _ = try await identity.signedUpUser("private@example.com")
        let emails = try FileManager.default.contentsOfDirectory(atPath: identity.maildrop).filter { $0.hasSuffix(".eml") }
        #expect(!emails.isEmpty)
        for name in emails { #expect(PrivateFiles.mode(of: identity.maildrop + "/" + name) == 0o600, "\(name)") }
        #expect(PrivateFiles.mode(of: identity.maildrop) == 0o700)
        #expect(PrivateFiles.mode(of: directory) == 0o700)
        #expect(PrivateFiles.mode(of: directory + "/identity.sqlite") == 0o600)
        await identity.stop()

        chmod(directory + "/identity.sqlite", 0o644)
        do {
            let again = try await IdentityHarness.start(directory: directory)
            await again.stop()
            Issue.record("identity started on a key store others may read")
        } catch {
            #expect("\(error)".contains("chmod 600"), "\(error)")
        }
    }

    @Test(arguments: StorageBackend.allCases) func badInputIsRefusedWithInvalidArgumentAndWritesNothing(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            _ = try await identity.signedUpUser("existing@example.com")
            let before = try await identity.rowCounts()
            let url = "http://127.0.0.1:\(identity.port)/identity.v1.IdentityService/Register"
            let long = String(repeating: "x", count: 300)
            let cases: [(body: String, mentions: String)] = [
                (#"{"password":"a long enough passphrase","fullName":"A"}"#, "'email' is required"),
                (#"{"email":"a@example.com","fullName":"A"}"#, "'password' is required"),
                (#"{"email":5,"password":"a long enough passphrase","fullName":"A"}"#, "'email': expected a string"),
                (#"{"email":"a@example.com","password":["x"],"fullName":"A"}"#, "'password': expected a string"),
                (#"{"email":"a@example.com","password":"a long enough passphrase","fullName":null}"#, "fullName"),
                (#"{"email":"a@example.com","password":"a long enough passphrase","fullName":"A""#, "not valid JSON"),
                (#"{"email":"\#(long)@example.com","password":"a long enough passphrase","fullName":"A"}"#, "email"),
                (#"{"email":"no-at-sign","password":"a long enough passphrase","fullName":"A"}"#, "name@example.com"),
                (#"{"email":"a@example.com","password":"short","fullName":"A"}"#, "at least 12 characters"),
                (#"{"email":"a@example.com","password":"\#(long)","fullName":"A"}"#, "at most 256 characters"),
                (#"{"email":"longname@example.com","password":"my longname is here","fullName":"A"}"#, "name part"),
                (
                    #"{"email":"a@example.com","password":"a long enough passphrase","fullName":"\#(String(repeating: "n", count: 201))"}"#,
                    "at most 200"
                ),
                (#"{"email":"a@example.com","password":"a long enough passphrase","fullName":"  "}"#, "fullName is required")
            ]
            for (body, mentions) in cases {
                let response = try await Curl.post(url, body: body, extra: ["--http2-prior-knowledge"])
                #expect(response.status == 400, "\(body)")
                #expect(response.body.contains("invalid_argument") && response.body.contains(mentions), "\(body) -> \(response.body)")
            }
            // Invalid UTF-8 inside a string.
            var invalid = Data(#"{"email":"a@example.com","password":"a long enough "#.utf8)
            invalid += [0xC3, 0x28, 0xFF]
            invalid += Data(#"","fullName":"A"}"#.utf8)
            let response = try await Curl.post(url, bodyFile: try temporaryFile(invalid), extra: ["--http2-prior-knowledge"])
            #expect(response.status == 400 && response.body.contains("invalid_argument"), "\(response.body)")

            #expect(try await identity.rowCounts() == before)

            let signedIn = try await identity.signedUpUser()
            let beforeProfile = try await identity.rowCounts()
            let profileURL = "http://127.0.0.1:\(identity.port)/identity.v1.IdentityService/UpdateBusinessProfile"
            let profiles: [(body: String, mentions: String)] = [
                (#"{"companyName":"C","companySize":"HUGE","country":"DE","jobTitle":"J","useCase":"U"}"#, "companySize must be one of"),
                (#"{"companyName":"C","companySize":"COMPANY_SIZE_1_TO_10","country":"XX","jobTitle":"J","useCase":"U"}"#, "ISO 3166-1"),
                (#"{"companyName":"","companySize":"COMPANY_SIZE_1_TO_10","country":"DE","jobTitle":"J","useCase":"U"}"#, "companyName is required"),
                (
                    #"{"companyName":"C\u0007","companySize":"COMPANY_SIZE_1_TO_10","country":"DE","jobTitle":"J","useCase":"U"}"#,
                    "control characters"
                ),
                (#"{"companyName":"C","companySize":"COMPANY_SIZE_1_TO_10","country":"DE","jobTitle":"J"}"#, "'useCase' is required")
            ]
            for (body, mentions) in profiles {
                let response = try await Curl.post(
                    profileURL, body: body,
                    extra: ["--http2-prior-knowledge", "-H", "authorization: Bearer \(signedIn.accessToken)"])
                #expect(response.status == 400 && response.body.contains(mentions), "\(body) -> \(response.body)")
            }
            #expect(try await identity.rowCounts() == beforeProfile)
        }
    }
}
