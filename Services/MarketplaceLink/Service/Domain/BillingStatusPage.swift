import AWSMarketplace
import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import GRDB
import Logging
import RPCCore
import ServiceRuntime
import Synchronization

/// The billing page's data: an organization's link as ADMIN and BILLING members see it, and the
/// operators' list of links.
final class BillingStatusPage: Sendable {
    private let pool: DatabasePool
    private let organization: ConnectClient
    private let authenticator: AccessTokenAuthenticator
    /// Each organization's billing status, encoded once for the billing page (the same answer for
    /// every caller allowed to see it); every link write invalidates it.
    private let statuses = ReadThroughCache<String, EncodedMessage<BillingStatus>>()
    /// Roles as organization's CheckAdmin gave them, reused for a few seconds by GetBillingStatus
    /// only (a read-only page). Binding always asks afresh.
    private let viewerRoles = ExpiringCache<String, CheckAdminResponse>(lifetime: .seconds(5))

    init(pool: DatabasePool, organization: ConnectClient, authenticator: AccessTokenAuthenticator) {
        self.pool = pool
        self.organization = organization
        self.authenticator = authenticator
    }

    /// A link changed: the next page reads afresh.
    func invalidate() {
        statuses.invalidate()
    }

    func billingStatus(_ request: BillingStatusRequest, bearerToken: String?) async throws -> EncodedMessage<BillingStatus> {
        let claims = try await authenticator.authenticate(bearerToken)
        let organizationID = request.organizationId
        let check: CheckAdminResponse
        do {
            check = try await viewerRoles.value(for: "\(organizationID) \(claims.subject)") { [organization] () async throws(RPCError) in
                try await organization.call(
                    Organizations.checkAdmin, MemberRef(organizationId: organizationID, userId: claims.subject),
                    options: .init(timeout: .seconds(5)))
            }
        } catch {
            throw error.code == .invalidArgument ? MarketplaceLinkError.notFound : MarketplaceLinkError.organizationUnavailable
        }
        guard check.role != nil else { throw MarketplaceLinkError.notFound }
        guard check.canReadBilling else { throw MarketplaceLinkError.billingRoleRequired }
        let status = try await statuses.value(for: organizationID) { [pool] in
            let link = try await pool.read { db in try LinkStore.latestLink(db, organizationID: organizationID) }
            return try EncodedMessage(link?.status ?? BillingStatus(organizationId: organizationID, provider: "NONE"))
        }
        return status!  // the loader always has an answer
    }

    func list(_ request: ListLinksRequest) async throws -> LinkList {
        LinkList(links: try await pool.read { db in try LinkStore.links(db, state: request.state, limit: 1000) }.map(\.status))
    }

    func status(linkID: String) async throws -> BillingStatus {
        guard let link = try await pool.read({ db in try LinkStore.link(db, id: linkID) }) else { throw MarketplaceLinkError.notFound }
        return link.status
    }
}
