import Contracts
import RPCCore

/// Binds `marketplacelink.v1.MarketplaceLinkService` to the use cases, and their records to the
/// messages (`MarketplaceLinkMessages`).
struct MarketplaceLinkHandlers {
    let registrations: Registrations
    let saga: BindingSaga
    let statusPage: BillingStatusPage<EncodedMessage<BillingStatus>>

    func register(in router: inout RPCRouter) {
        let (registrations, saga, statusPage) = (registrations, saga, statusPage)
        router.register(MarketplaceLink.acceptRegistration) { request, context in
            AcceptRegistrationResponse(
                try await registrations.acceptRegistration(request, bearerToken: context.bearerToken, clientIP: context.endUserIP))
        }
        router.register(MarketplaceLink.getClaim) { request, _ in
            let (state, registration) = try await registrations.claimStatus(request)
            return ClaimStatus(state: state, offer: registration.offer.summary, expiresAt: registration.claimExpiresAt)
        }
        router.register(MarketplaceLink.bindOrganization) { request, context in
            try await saga.bind(request, bearerToken: context.bearerToken).status
        }
        router.register(
            MarketplaceLink.getBillingStatus,
            encodedHandler: { request, context in
                try await statusPage.billingStatus(request, bearerToken: context.bearerToken)
            })
        router.register(MarketplaceLink.listLinks) { request, _ in
            LinkList(links: try await statusPage.list(request).map(\.status))
        }
    }
}
