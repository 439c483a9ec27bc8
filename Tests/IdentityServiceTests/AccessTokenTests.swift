import AccessTokens
import ConnectTransport
import Contracts
import Foundation
@testable import IdentityService
import RPCCore
import ServiceRuntime
import Testing
import TestSupport

/// Access tokens as other services see them: verified with the published keys only.
@Suite(.timeLimit(.minutes(2))) struct AccessTokenTests {
    @Test func tokensVerifyWithThePublishedKeysAndCarryTheUser() async throws {
        let identity = try await IdentityHarness.start()
        defer { Task { await identity.stop() } }
        let login = try await identity.signedUpUser("claims@example.com")
        let keys = try await identity.client.call(Identity.getSigningKeys, Empty())
        #expect(keys.keys.count == 1 && keys.keys[0].alg == "ES256" && keys.keys[0].kty == "EC")
        let claims = try AccessTokenVerifier(keySet: keys).verify(login.accessToken)
        #expect(claims.subject == login.user.id && claims.email == "claims@example.com" && claims.emailVerified)
        #expect(claims.onboardingState == .needsBusinessProfile)
        #expect(abs(claims.expiresAt.timeIntervalSince(claims.issuedAt) - 600) < 1)
        #expect(abs(claims.expiresAt.timeIntervalSince(login.accessTokenExpiresAt)) < 1)
    }

    @Test func tamperedExpiredForeignAndUnsignedTokensAreRefused() async throws {
        let identity = try await IdentityHarness.start()
        defer { Task { await identity.stop() } }
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
        await #expect(throws: RPCError(.unauthenticated, "this call needs an access token: send 'authorization: Bearer <access token>' from Login")) {
            try await identity.client.call(Identity.getMe, Empty())
        }
        identity.clock.advance(by: 601)
        await #expect(throws: RPCError(.unauthenticated, "the access token has expired; get a new one with RefreshAccessToken")) {
            try await identity.client.call(Identity.getMe, Empty(), options: .init(bearerToken: login.accessToken))
        }
        #expect(throws: AccessTokenError.expired) { try verifier.verify(login.accessToken, now: identity.clock.now) }
    }

    @Test func afterARotationOldTokensVerifyUntilTheyExpireAndNewOnesUseTheNewKey() async throws {
        let identity = try await IdentityHarness.start()
        defer { Task { await identity.stop() } }
        let email = "rotation@example.com"
        let before = try await identity.signedUpUser(email)
        let oldKey = try #require(AccessTokenVerifier.keyID(of: before.accessToken))

        // The command, run against the service's database while it serves.
        let settings = try ServiceOptions.parse(["--data-dir", identity.directory]).settings(service: IdentityDefinition.identity, environment: [:])
        let newKey = try IdentityDefinition.rotateSigningKeys(settings: settings)
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
