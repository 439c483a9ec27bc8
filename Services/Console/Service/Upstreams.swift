import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import Logging
import RPCCore
import ServiceRuntime

/// The three services behind the console, one multiplexed HTTP/2 connection each, and the
/// signed-in buyer as identity knows them.
final class Upstreams: Sendable {
    let identity: ConnectClient
    let organization: ConnectClient
    let marketplaceLink: ConnectClient
    private let authenticator: AccessTokenAuthenticator
    private let timeout: Duration
    /// Access tokens by session-token hash, so a page does not ask identity for one every time.
    /// Short-lived: a session signed out on another console replica stops working here within
    /// a minute (one signed out here stops at once: `forget`).
    private let accessTokens = ExpiringCache<String, VerifiedAccessToken>(lifetime: .seconds(60))
    /// Users' names and addresses for member lists and "linked by", briefly reused.
    private let directory = ExpiringCache<String, UserSummary>(lifetime: .seconds(30))

    init(settings: ConsoleSettings, logger: Logger) throws {
        identity = try ConnectClient(upstream: .url(settings.identityURL), credential: settings.credential, tls: settings.peerTLS)
        organization = try ConnectClient(upstream: .url(settings.organizationURL), credential: settings.credential, tls: settings.peerTLS)
        marketplaceLink = try ConnectClient(upstream: .url(settings.marketplaceLinkURL), credential: settings.credential, tls: settings.peerTLS)
        authenticator = AccessTokenAuthenticator(identity: identity, logger: logger)
        timeout = settings.upstreamTimeout
    }

    func close() async {
        await identity.close()
        await organization.close()
        await marketplaceLink.close()
    }

    /// Call options for a page: the deadline, the buyer's address (believed by identity and
    /// marketplace-link only with the console's credential), and the buyer's access token.
    func options(clientIP: String, accessToken: String? = nil) -> ConnectClient.CallOptions {
        ConnectClient.CallOptions(timeout: timeout, bearerToken: accessToken, headers: [(CallContext.endUserIPHeader, clientIP)])
    }

    /// The buyer behind a session cookie: nil when the session has ended (or never was).
    func signedIn(sessionToken: String, clientIP: String) async throws(RPCError) -> SignedInBuyer? {
        let key = SecretToken.hash(sessionToken)
        do throws(RPCError) {
            // Checked once when fetched (identity's signature), then reused while it is cached.
            let token = try await accessTokens.value(for: key) { () async throws(RPCError) -> VerifiedAccessToken in
                let accessToken = try await identity.call(
                    Identity.refreshAccessToken, SessionTokenRequest(sessionToken: sessionToken),
                    options: options(clientIP: clientIP)
                ).accessToken
                return VerifiedAccessToken(token: accessToken, claims: try await authenticator.authenticate(accessToken))
            }
            return SignedInBuyer(sessionToken: sessionToken, sessionKey: key, accessToken: token.token, claims: token.claims)
        } catch {
            guard error.code == .unauthenticated else { throw error }
            accessTokens.remove(key)
            return nil
        }
    }

    /// After sign-out or a profile change: the next page asks identity afresh.
    func forget(sessionToken: String) {
        accessTokens.remove(SecretToken.hash(sessionToken))
    }

    /// The users among `ids` as identity knows them (internal-only: the console's credential).
    func users(_ ids: [String], clientIP: String) async throws(RPCError) -> [String: UserSummary] {
        var found: [String: UserSummary] = [:]
        let unique = Array(Set(ids)).prefix(100)
        let missing = unique.filter { directory.cached($0) == nil }
        if !missing.isEmpty {
            let answer = try await identity.call(
                Identity.lookupUsers, LookupUsersRequest(userIds: Array(missing)), options: options(clientIP: clientIP))
            for user in answer.users { directory.store(user, for: user.id) }
        }
        for id in unique {
            if let user = directory.cached(id) { found[id] = user }
        }
        return found
    }
}

/// An access token from identity with the claims its signature vouches for.
struct VerifiedAccessToken: Sendable {
    let token: String
    let claims: AccessTokenClaims
}

/// A signed-in buyer: their session (the cookie), a fresh access token for other services, and
/// what identity says of them.
struct SignedInBuyer: Sendable {
    let sessionToken: String
    /// The session token's hash: what caches are keyed by, never the token itself.
    let sessionKey: String
    let accessToken: String
    let claims: AccessTokenClaims

    var onboarding: OnboardingStep.Buyer { OnboardingStep.Buyer(onboardingState: claims.onboardingState) }
}
