import AWSMarketplace
import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import Logging
import RPCCore
import ServiceRuntime
import Synchronization

/// The billing page's data: an organization's link as ADMIN and BILLING members see it, and the
/// operators' list of links. The page is kept rendered (`Rendered`, made by the handlers: the
/// encoded message), the same for every caller allowed to see it.
final class BillingStatusPage<Rendered: Sendable>: Sendable {
    /// Renders an organization's page from its latest link (nil: never linked).
    typealias Render = @Sendable (_ organizationID: String, _ link: LinkStore.Link?) throws -> Rendered

    private let storage: any LinkStorage
    private let organization: ConnectClient
    private let authenticator: AccessTokenAuthenticator
    private let render: Render
    /// Each organization's page, rendered once; every link write invalidates it (with PostgreSQL,
    /// every replica's: `MarketplaceLinkDefinition` listens for other replicas' link writes).
    private let statuses = ReadThroughCache<String, Rendered>()
    /// Roles as organization's CheckAdmin gave them, reused for a few seconds by GetBillingStatus
    /// and GetUsage only (read-only pages). Binding always asks afresh.
    private let viewerRoles = ExpiringCache<String, CheckAdminResponse>(lifetime: .seconds(5))

    init(storage: any LinkStorage, organization: ConnectClient, authenticator: AccessTokenAuthenticator, render: @escaping Render) {
        self.storage = storage
        self.render = render
        self.organization = organization
        self.authenticator = authenticator
    }

    /// A link changed: the next page reads afresh.
    func invalidate() {
        statuses.invalidate()
    }

    func billingStatus(_ request: BillingStatusRequest, bearerToken: String?) async throws -> Rendered {
        let organizationID = request.organizationId
        try await authorizeReader(organizationID: organizationID, bearerToken: bearerToken)
        let status = try await statuses.value(for: organizationID) { [storage, render] in
            try render(organizationID, try await storage.latestLink(organizationID: organizationID))
        }
        return status!  // the loader always has an answer
    }

    /// This month's usage (UTC) of the organization, for the same readers as its billing status.
    func usage(_ request: GetUsageRequest, bearerToken: String?, now: Date) async throws -> UsageReport {
        try await authorizeReader(organizationID: request.organizationId, bearerToken: bearerToken)
        let monthStart = UsageRules.monthStart(of: now)
        let hours = try await storage.usageHours(organizationID: request.organizationId, since: monthStart)
        return UsageRules.report(organizationID: request.organizationId, monthStart: monthStart, hours: hours)
    }

    /// The caller is an ADMIN or BILLING member of the organization (organization's CheckAdmin).
    private func authorizeReader(organizationID: String, bearerToken: String?) async throws {
        let claims = try await authenticator.authenticate(bearerToken)
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
    }

    func list(_ request: ListLinksRequest) async throws -> [LinkStore.Link] {
        try await storage.links(state: request.state, limit: 1000)
    }
}
