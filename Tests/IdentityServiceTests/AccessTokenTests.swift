import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import IdentityTestSupport
import RPCCore
import ServiceRuntime
import TestSupport
import Testing

@testable import IdentityService

/// Access tokens as other services see them: verified with the published keys only.
@Suite(.timeLimit(.minutes(2))) struct AccessTokenTests {
    @Test func base64URLMatchesFoundationsBase64AndRefusesWhatIsNotBase64URL() {
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            let expected = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == expected)
            #expect(Base64URL.decode(expected) == Data(bytes))
        }
        for bad in ["a", "ab+c", "ab/c", "abc=", "ab c", "é"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
        // Non-canonical spellings: the unused low bits of the last character set.
        #expect(Base64URL.decode("AA") == Data([0]) && Base64URL.decode("AB") == nil)
        #expect(Base64URL.decode("AAA") == Data([0, 0]) && Base64URL.decode("AAB") == nil)
        let token = SecretToken.generate().value
        #expect(SecretToken.isWellFormed(token) && !SecretToken.isWellFormed(Self.withSpareBitSet(token)))
    }

    /// The same text with the lowest unused bit of its last character set: another spelling of
    /// the same bytes under a lax decoder.
    static func withSpareBitSet(_ text: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let index = alphabet.firstIndex(of: text.last!)!
        return String(text.dropLast()) + String(alphabet[index | 1])
    }

    /// An access token has one spelling: the same signature with n - s, and a payload whose last
    /// character carries extra bits, are refused though they decode to the same bytes.
    @Test func malleatedSpellingsOfAValidTokenAreRefused() throws {
        let key = SigningKey.generate()
        let verifier = AccessTokenVerifier(keySet: JSONWebKeySet(keys: [key.publicJWK]))
        for _ in 0..<8 {
            let token = try key.sign(
                AccessTokenClaims(
                    subject: "u", email: "u@example.com", emailVerified: true, onboardingState: .complete,
                    sessionID: "s", issuedAt: Date(), expiresAt: Date() + 600))
            _ = try verifier.verify(token)
            let parts = token.split(separator: ".").map(String.init)
            let signature = try #require(Base64URL.decode(parts[2]))
            #expect(ECDSALowS.isLow(signature), "we sign low-S only")
            let highS = parts[0] + "." + parts[1] + "." + Base64URL.encode(ECDSALowS.flipped(signature))
            #expect(throws: AccessTokenError.badSignature) { try verifier.verify(highS) }
            // A 64-byte signature is 86 characters with 4 spare bits; setting one spells the same bytes.
            #expect(throws: AccessTokenError.malformed) {
                try verifier.verify(parts[0] + "." + parts[1] + "." + Self.withSpareBitSet(parts[2]))
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func tokensVerifyWithThePublishedKeysAndCarryTheUser(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let login = try await identity.signedUpUser("claims@example.com")
            let keys = try await identity.client.call(Identity.getSigningKeys, Empty())
            #expect(keys.keys.count == 1 && keys.keys[0].alg == "ES256" && keys.keys[0].kty == "EC")
            let claims = try AccessTokenVerifier(keySet: keys).verify(login.accessToken)
            #expect(claims.subject == login.user.id && claims.email == "claims@example.com" && claims.emailVerified)
            #expect(claims.onboardingState == .needsBusinessProfile)
            #expect(abs(claims.expiresAt.timeIntervalSince(claims.issuedAt) - 600) < 1)
            #expect(abs(claims.expiresAt.timeIntervalSince(login.accessTokenExpiresAt)) < 1)
        }
    }

    @Test(arguments: StorageBackend.allCases) func tamperedExpiredForeignAndUnsignedTokensAreRefused(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let login = try await identity.signedUpUser()
            let verifier = AccessTokenVerifier(keySet: try await identity.client.call(Identity.getSigningKeys, Empty()))
            let parts = login.accessToken.split(separator: ".").map(String.init)

            // Another payload under the original signature.
            var claims = try verifier.verify(login.accessToken)
            claims.subject = "someone-else"
            let encoder = JSONEncoder()
            let forgedPayload = Base64URL.encode(try encoder.encode(claims))
            let tampered = [parts[0], forgedPayload, parts[2]].joined(separator: ".")
            #expect(throws: AccessTokenError.badSignature) { try verifier.verify(tampered) }

            // A well-formed token signed by a key identity never published.
            let foreign = try SigningKey.generate().sign(claims)
            #expect(throws: AccessTokenError.self) { try verifier.verify(foreign) }

            // alg "none" with no signature.
            let none = Base64URL.encode(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + parts[1] + "."
            #expect(throws: AccessTokenError.unsupportedAlgorithm) { try verifier.verify(none) }
            #expect(throws: AccessTokenError.malformed) { try verifier.verify("not.a.token") }

            // Each is refused by identity itself with unauthenticated and a message saying what to do.
            for token in [tampered, foreign, none, "garbage"] {
                await #expect(throws: RPCError(.unauthenticated, "the access token is not valid; sign in again")) {
                    try await identity.client.call(Identity.getMe, Empty(), options: .init(bearerToken: token))
                }
            }
            await #expect(
                throws: RPCError(.unauthenticated, "this call needs an access token: send 'authorization: Bearer <access token>' from Login")
            ) {
                try await identity.client.call(Identity.getMe, Empty())
            }
            identity.clock.advance(by: 601)
            await #expect(throws: RPCError(.unauthenticated, "the access token has expired; get a new one with RefreshAccessToken")) {
                try await identity.client.call(Identity.getMe, Empty(), options: .init(bearerToken: login.accessToken))
            }
            #expect(throws: AccessTokenError.expired) { try verifier.verify(login.accessToken, now: identity.clock.now) }
        }
    }

    /// The key ring reloads every 5 s while calls verify tokens on the event loops. It once did
    /// that with a blocking database read, which hung the event loops under load.
    @Test(arguments: StorageBackend.allCases) func manyConcurrentGetMeCallsAcrossAKeyReloadAllSucceed(backend: StorageBackend) async throws {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let login = try await identity.signedUpUser()
            let until = ContinuousClock.now + .seconds(7)
            let results = await withTaskGroup(of: (Int, Int).self) { group in
                for _ in 0..<64 {
                    group.addTask {
                        var ok = 0
                        var failed = 0
                        while ContinuousClock.now < until {
                            do {
                                _ = try await identity.client.call(
                                    Identity.getMe, Empty(), options: .init(timeout: .seconds(5), bearerToken: login.accessToken))
                                ok += 1
                            } catch {
                                failed += 1
                            }
                        }
                        return (ok, failed)
                    }
                }
                return await group.reduce(into: (0, 0)) {
                    $0.0 += $1.0
                    $0.1 += $1.1
                }
            }
            #expect(results.1 == 0 && results.0 > 100, "\(results.0) succeeded, \(results.1) failed")
            #expect(try await identity.client.call(Health.check, HealthCheckRequest(), options: .init(timeout: .seconds(2))).status == .serving)
        }
    }

    @Test(arguments: StorageBackend.allCases) func afterARotationOldTokensVerifyUntilTheyExpireAndNewOnesUseTheNewKey(backend: StorageBackend)
        async throws
    {
        try await withStarted(IdentityHarness.start(backend: backend)) { identity in
            let email = "rotation@example.com"
            let before = try await identity.signedUpUser(email)
            let oldKey = try #require(AccessTokenVerifier.keyID(of: before.accessToken))

            // The command, run against the service's database while it serves.
            let settings = try ServiceOptions.parse(identity.store.serviceArguments).settings(
                service: IdentityDefinition.identity, environment: [:])
            let newKey = try await IdentityDefinition.rotateSigningKeys(settings: settings)
            #expect(newKey != oldKey)

            // Within the reload interval the service signs with the new key.
            var after: LoginResponse?
            try await eventually(timeout: .seconds(10)) {
                let login = try await identity.client.call(Identity.login, LoginRequest(email: email, password: IdentityHarness.password))
                after = login
                return AccessTokenVerifier.keyID(of: login.accessToken) == newKey
            }
            let newToken = try #require(after?.accessToken)
            #expect(AccessTokenVerifier.keyID(of: newToken) == newKey)
            let published = try await identity.client.call(Identity.getSigningKeys, Empty())
            #expect(Set(published.keys.map(\.kid)) == [oldKey, newKey])
            _ = try AccessTokenVerifier(keySet: published).verify(before.accessToken, now: identity.clock.now)
            _ = try await identity.client.call(Identity.getMe, Empty(), options: .init(bearerToken: before.accessToken))

            // Ten minutes on, every token of the old key has expired, and the key is no longer published.
            identity.clock.advance(by: 601)
            try await eventually(timeout: .seconds(10)) {
                try await identity.client.call(Identity.getSigningKeys, Empty()).keys.map(\.kid) == [newKey]
            }
        }
    }
}
