import AccessTokens
import ConnectTransport
import Contracts
import Crypto
import Foundation
import GRDB
import IdentityTestSupport
import RPCCore
import TestSupport
import Testing

/// "Email not verified" is refused twice over: identity gives no access token before the email is
/// verified, and marketplace-link refuses to bind for a token that says it is not verified.
@Suite(.timeLimit(.minutes(3))) struct EmailVerificationTests {
    @Test(arguments: StorageBackend.allCases) func anUnverifiedUserCannotBind(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let claim = try #require(try await system.register().claim)

            // Registered, not verified: no sign-in, so no token to bind with.
            let email = "unverified-\(UUID().uuidString.prefix(8))@example.com"
            _ = try await system.identity.client.call(
                Identity.register, RegisterRequest(email: email, password: IdentityHarness.password, fullName: "Un Verified"))
            await #expect(
                throws: RPCError(
                    .failedPrecondition,
                    "verify your email address first: follow the link in the email we sent; to get a new one, use ResendVerification")
            ) {
                try await system.identity.client.call(Identity.login, LoginRequest(email: email, password: IdentityHarness.password))
            }

            // A token signed with identity's own current key that says the email is not verified
            // (an admin of the organization otherwise): marketplace-link refuses, and nothing is linked.
            let (admin, organization) = try await system.adminWithOrganization()
            let key = try await system.identity.database().read { db -> SigningKey in
                let row = try #require(
                    try Row.fetchOne(db, sql: "SELECT kid, private_key FROM signing_key WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"))
                return SigningKey(keyID: row["kid"], privateKey: try P256.Signing.PrivateKey(rawRepresentation: row["private_key"] as Data))
            }
            let now = Date()
            let unverified = try key.sign(
                AccessTokenClaims(
                    subject: admin.user.id, email: admin.user.email, emailVerified: false,
                    onboardingState: .complete, sessionID: "session", issuedAt: now, expiresAt: now + 300))
            await #expect(throws: RPCError(.failedPrecondition, "verify your email address before linking billing")) {
                try await system.linkClient.call(
                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                    options: .init(bearerToken: unverified))
            }
            #expect(try await system.linkSQL("SELECT count(*) FROM link") == "0")
            // The same admin, verified, may.
            let bound = try await system.linkClient.call(
                MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                options: .init(bearerToken: admin.accessToken))
            #expect(bound.state == .active)
        }
    }
}
