import Contracts
import RPCCore

/// Binds `marketplacelink.v1.MarketplaceLinkService` to the use cases.
struct MarketplaceLinkHandlers {
    let links: ContractLinks

    func register(in router: inout RPCRouter) {
        let links = links
        router.register(MarketplaceLink.acceptRegistration) { request, context in
            try await links.acceptRegistration(request, bearerToken: context.bearerToken, clientIP: context.endUserIP)
        }
        router.register(MarketplaceLink.getClaim) { request, _ in
            try await links.claimStatus(request)
        }
        router.register(MarketplaceLink.bindOrganization) { request, context in
            try await links.bind(request, bearerToken: context.bearerToken)
        }
        router.register(MarketplaceLink.getBillingStatus, encodedHandler: { request, context in
            try await links.billingStatus(request, bearerToken: context.bearerToken)
        })
        router.register(MarketplaceLink.listLinks) { request, _ in
            try await links.list(request)
        }
    }
}
