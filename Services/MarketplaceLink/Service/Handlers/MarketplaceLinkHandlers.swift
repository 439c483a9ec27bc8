import Contracts
import RPCCore

/// Binds `marketplacelink.v1.MarketplaceLinkService` to the use cases.
struct MarketplaceLinkHandlers {
    let registrations: Registrations
    let saga: BindingSaga
    let statusPage: BillingStatusPage

    func register(in router: inout RPCRouter) {
        let (registrations, saga, statusPage) = (registrations, saga, statusPage)
        router.register(MarketplaceLink.acceptRegistration) { request, context in
            try await registrations.acceptRegistration(request, bearerToken: context.bearerToken, clientIP: context.endUserIP)
        }
        router.register(MarketplaceLink.getClaim) { request, _ in
            try await registrations.claimStatus(request)
        }
        router.register(MarketplaceLink.bindOrganization) { request, context in
            try await saga.bind(request, bearerToken: context.bearerToken)
        }
        router.register(
            MarketplaceLink.getBillingStatus,
            encodedHandler: { request, context in
                try await statusPage.billingStatus(request, bearerToken: context.bearerToken)
            })
        router.register(MarketplaceLink.listLinks) { request, _ in
            try await statusPage.list(request)
        }
    }
}
