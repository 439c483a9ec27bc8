import ConnectTransport
import Contracts
import Foundation
import RPCCore

/// Binds `marketplacelink.v1.MarketplaceLinkService` to the use cases, and their records to the
/// messages (`MarketplaceLinkMessages`).
struct MarketplaceLinkHandlers {
    let registrations: Registrations
    let saga: BindingSaga
    let statusPage: BillingStatusPage<EncodedMessage<BillingStatus>>
    let meter: UsageMeter
    let now: @Sendable () -> Date

    func register(in router: inout RPCRouter) {
        let (registrations, saga, statusPage, meter, now) = (registrations, saga, statusPage, meter, now)
        router.register(MarketplaceLink.acceptRegistration) { request, context in
            AcceptRegistrationResponse(
                try await registrations.acceptRegistration(request, bearerToken: context.bearerToken, clientIP: context.endUserIP))
        }
        router.register(MarketplaceLink.getClaim) { request, _ in
            let (state, registration) = try await registrations.claimStatus(request)
            return ClaimStatus(state: state, offer: registration.offer.summary, expiresAt: registration.claimExpiresAt)
        }
        router.register(MarketplaceLink.bindOrganization) { request, context in
            TraceContext.annotate(organizationID: request.organizationId)
            return try await saga.bind(request, bearerToken: context.bearerToken).status
        }
        router.register(
            MarketplaceLink.getBillingStatus,
            encodedHandler: { request, context in
                TraceContext.annotate(organizationID: request.organizationId)
                return try await statusPage.billingStatus(request, bearerToken: context.bearerToken)
            })
        router.register(MarketplaceLink.listLinks) { request, _ in
            LinkList(links: try await statusPage.list(request).map(\.status))
        }
        router.register(MarketplaceLink.recordUsage) { request, _ in
            try await meter.record(request)
        }
        router.register(MarketplaceLink.getUsage) { request, context in
            TraceContext.annotate(organizationID: request.organizationId)
            return try await statusPage.usage(request, bearerToken: context.bearerToken, now: now())
        }
    }
}
