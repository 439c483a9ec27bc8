import Contracts
import Foundation
import RPCCore
import Testing

@testable import IdentityService

/// identity's rules as plain values, without sockets or databases.
struct IdentityRulesTests {
    @Test func emailsAreTrimmedAndTheirDomainLowercasedButTheNamePartKeepsItsCase() throws {
        #expect(try EmailAddress("  Jane.Doe@Example.COM \n").description == "Jane.Doe@example.com")
        #expect(try EmailAddress("a+tag@sub.example.co.uk").description == "a+tag@sub.example.co.uk")
        for bad in [
            "", "plain", "@example.com", "a@", "a@localhost", "a b@example.com", "a@exa mple.com", "a..b@example.com",
            ".a@example.com", "a@-example.com", "a@example..com", "a\r\nBcc: x@evil.com@example.com",
            String(repeating: "a", count: 65) + "@example.com", "ü@example.com"
        ] {
            #expect(throws: IdentityError.self, "\(bad)") { try EmailAddress(bad) }
        }
    }

    @Test func passwordsNeedTwelveToTwoHundredFiftySixCharactersAndNotTheEmailName() throws {
        let email = try EmailAddress("margaret@example.com")
        try PasswordPolicy.check("twelve chars", for: email)
        try PasswordPolicy.check(String(repeating: "é", count: 256), for: email)
        #expect(throws: IdentityError.self) { try PasswordPolicy.check("eleven char", for: email) }
        #expect(throws: IdentityError.self) { try PasswordPolicy.check(String(repeating: "x", count: 257), for: email) }
        #expect(throws: IdentityError.self) { try PasswordPolicy.check("my name is MARGARET ok", for: email) }
        // A name part of one or two letters would rule out ordinary words, so it is not checked.
        try PasswordPolicy.check("a perfectly fine password", for: try EmailAddress("a@example.com"))
    }

    /// 256 grapheme clusters of 2 KiB each: 256 "characters", half a megabyte. Counting them cost
    /// ~90 ms of event-loop time per call; the byte bound refuses them before any count.
    @Test func aHugePasswordOfFewCharactersIsRefusedByItsByteLength() throws {
        let email = try EmailAddress("margaret@example.com")
        let cluster = "a" + String(repeating: "\u{0301}", count: 1024)
        let huge = String(repeating: cluster, count: 256)
        #expect(huge.count == 256 && huge.utf8.count > 500_000)
        #expect(throws: IdentityError.invalid(field: "password", reason: "must be at most 256 characters long")) {
            try PasswordPolicy.check(huge, for: email)
        }
        #expect(!TextLength.isAtMost(huge, characters: 256))
        #expect(TextLength.isAtMost(String(repeating: "😀", count: 256), characters: 256))
        #expect(throws: IdentityError.self) { try BusinessProfileRules.text(huge, field: "companyName", maximum: 200) }
    }

    @Test func lockoutsStartAfterFiveFailuresAndDoubleUpToFifteenMinutes() {
        let policy = LoginThrottlePolicy()
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect((1...4).allSatisfy { policy.lockedUntil(failures: $0, lastFailure: start) == nil })
        let lengths = (5...12).map { policy.lockedUntil(failures: $0, lastFailure: start)!.timeIntervalSince(start) }
        #expect(lengths == [30, 60, 120, 240, 480, 900, 900, 900])
        #expect(policy.currentFailures(7, lastFailure: start, at: start + 3600) == 7)
        #expect(policy.currentFailures(7, lastFailure: start, at: start + 86400) == 0)
    }

    @Test func sessionsLiveTwentyFourHoursAtMostAndTwoHoursIdle() {
        let rules = SessionRules()
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(rules.isLive(createdAt: start, lastUsedAt: start, revokedAt: nil, at: start + 7199))
        #expect(!rules.isLive(createdAt: start, lastUsedAt: start, revokedAt: nil, at: start + 7200))
        #expect(!rules.isLive(createdAt: start, lastUsedAt: start + 86000, revokedAt: nil, at: start + 86400))
        #expect(!rules.isLive(createdAt: start, lastUsedAt: start, revokedAt: start, at: start + 1))
        #expect(rules.endsAt(createdAt: start, lastUsedAt: start + 86000) == start + 86400)
    }

    @Test func businessProfilesAreTidiedAndChecked() throws {
        let tidy = try BusinessProfileRules.validated(
            BusinessProfile(
                companyName: "  Acme ", companySize: "COMPANY_SIZE_OVER_5000",
                country: " de", jobTitle: "CTO", useCase: "Analytics"))
        #expect(tidy.companyName == "Acme" && tidy.country == "DE")
        #expect(throws: IdentityError.self) {
            try BusinessProfileRules.validated(
                BusinessProfile(
                    companyName: "A", companySize: "COMPANY_SIZE_1_TO_10", country: "UK",
                    jobTitle: "J", useCase: "U"))
        }
        #expect(CountryCodes.all.count == 249)
    }

    @Test func smtpBodiesAreDotStuffedAndAddressesTakenFromHeaders() {
        #expect(SMTPTransport.dotStuffed("a\r\n.b\r\n..c\r\n") == "a\r\n..b\r\n...c\r\n")
        #expect(SMTPTransport.address("Marketplace <no-reply@example.com>") == "no-reply@example.com")
        #expect(SMTPTransport.address(" user@example.com ") == "user@example.com")
    }

    @Test func smtpURLsSaySecurityAndCredentials() throws {
        let settings = try SMTPSettings(url: "smtp+starttls://user%40corp:p%3Ass@mail.example.com:587", trustedCAPath: nil)
        #expect(settings.host == "mail.example.com" && settings.port == 587 && settings.security == .required)
        #expect(settings.username == "user@corp" && settings.password == "p:ss")
        #expect(try SMTPSettings(url: "smtp://relay", trustedCAPath: nil).security == .opportunistic)
        #expect(throws: (any Error).self) { try SMTPSettings(url: "http://relay", trustedCAPath: nil) }
    }
}
