import ConnectTransport
import Contracts
import Foundation
import IdentityTestSupport
import RPCCore
import TestSupport
import Testing

/// From the simulator's "Set up your account" to an ACTIVE binding, over HTTP/2 through every service.
@Suite(.timeLimit(.minutes(3))) struct JourneyTests {
    @Test(arguments: StorageBackend.allCases) func aNewUserRegistersCreatesAnOrganizationAndLinksTheContract(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let accepted = try await system.register()
            #expect(!accepted.alreadyLinked)
            let claim = try #require(accepted.claim)
            #expect(accepted.offer.awsAccountId == "********1111" && accepted.offer.productCode == SimulatorProcess.product)
            #expect(accepted.offer.entitlements == ["seats": "10", "storage": "500", "compute": "7"])
            // The whole account id never reaches a user, not even inside the license ARN.
            let licenseArn = try #require(accepted.offer.licenseArn)
            #expect(licenseArn.contains("********1111") && !licenseArn.contains("111111111111"), "\(licenseArn)")
            #expect(try await system.linkClient.call(MarketplaceLink.getClaim, ClaimRequest(claim: claim)).state == .pending)

            let (user, organization) = try await system.adminWithOrganization()
            let auth = ConnectClient.CallOptions(bearerToken: user.accessToken)
            let bound = try await system.linkClient.call(
                MarketplaceLink.bindOrganization,
                BindOrganizationRequest(claim: claim, organizationId: organization.id), options: auth)
            #expect(bound.state == .active && bound.linkedBy == user.user.id && bound.provider == "AWS_MARKETPLACE")

            let billing = try await system.organizationClient.call(
                Organizations.getBillingAccount, OrganizationRef(organizationId: organization.id), options: auth)
            #expect(billing.provider == .awsMarketplace && billing.awsAccountId == "********1111" && billing.linkId == bound.linkId)
            #expect(billing.contract?.dimensions == ["seats": "10", "storage": "500", "compute": "7"])
            #expect(billing.contract?.offerId.contains("111111111111") == false && bound.offer?.licenseArn?.contains("111111111111") == false)
            let status = try await system.linkClient.call(
                MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: organization.id), options: auth)
            #expect(status == bound)
            #expect(try await system.linkClient.call(MarketplaceLink.getClaim, ClaimRequest(claim: claim)).state == .bound)
            #expect(
                try await system.operatorClient.call(MarketplaceLink.listLinks, ListLinksRequest(state: .active)).links.map(\.linkId) == [
                    bound.linkId
                ])
        }
    }

    @Test(arguments: StorageBackend.allCases) func anExistingUserPicksAnExistingOrganization(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let (user, organization) = try await system.adminWithOrganization("Existing Co")
            _ = try await system.organizationClient.call(
                Organizations.selectOrganization, OrganizationRef(organizationId: organization.id),
                options: .init(bearerToken: user.accessToken))
            // The existing user signs in again after arriving from AWS.
            let again = try await system.identity.client.call(
                Identity.login, LoginRequest(email: user.user.email, password: IdentityHarness.password))
            let accepted = try await system.register(identity: "carol", offer: "offer-c")
            let bound = try await system.linkClient.call(
                MarketplaceLink.bindOrganization,
                BindOrganizationRequest(claim: try #require(accepted.claim), organizationId: organization.id),
                options: .init(bearerToken: again.accessToken))
            #expect(bound.state == .active && bound.offer?.awsAccountId == "********2222")
        }
    }

    @Test(arguments: StorageBackend.allCases) func refusalsSayWhatToDo(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let (admin, organization) = try await system.adminWithOrganization()
            let developer = try await system.identity.signedUpUser()
            _ = try await system.organizationClient.call(
                Organizations.addMember, MemberRequest(organizationId: organization.id, userId: developer.user.id, role: .developer),
                options: .init(bearerToken: admin.accessToken))
            _ = try await system.organizationClient.call(
                Organizations.acceptInvitation, OrganizationRef(organizationId: organization.id),
                options: .init(bearerToken: developer.accessToken))
            let accepted = try await system.register()
            let claim = try #require(accepted.claim)

            // Not an admin of the organization.
            await #expect(
                throws: RPCError(
                    .permissionDenied, "only an ADMIN of the organization can link its billing; ask an admin, or pick an organization you administer")
            ) {
                try await system.linkClient.call(
                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                    options: .init(bearerToken: developer.accessToken))
            }
            _ = try await system.linkClient.call(
                MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                options: .init(bearerToken: admin.accessToken))
            // A replayed claim.
            let (_, second) = try await system.adminWithOrganization("Second Co")
            await #expect(
                throws: RPCError(
                    .failedPrecondition, "this registration has already been used to link an organization; see the organization's billing page")
            ) {
                try await system.linkClient.call(
                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: second.id),
                    options: .init(bearerToken: admin.accessToken))
            }
            // The same AWS account arrives again: already linked, nothing created; the organization's name only for a member.
            let again = try await system.register()
            #expect(again.alreadyLinked && again.claim == nil && again.linkedOrganizationName == nil)
            let forMember = try await system.register(bearerToken: admin.accessToken)
            #expect(forMember.alreadyLinked && forMember.linkedOrganizationName == "Buyer Co")

            // Another account's contract for an organization already billed through the marketplace.
            let other = try await system.register(identity: "carol", offer: "offer-c")
            await #expect(
                throws: RPCError(
                    .failedPrecondition, "this organization is already billed through an AWS Marketplace contract; pick another organization")
            ) {
                try await system.linkClient.call(
                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: try #require(other.claim), organizationId: organization.id),
                    options: .init(bearerToken: admin.accessToken))
            }
            // A made-up registration token, and a made-up claim.
            await #expect(throws: RPCError.self) {
                try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: "not-a-real-token"))
            }
            await #expect(
                throws: RPCError(.notFound, "this registration claim is not valid: in AWS Marketplace, click \"Set up your account\" again")
            ) {
                try await system.linkClient.call(MarketplaceLink.getClaim, ClaimRequest(claim: String(repeating: "A", count: 43)))
            }
            await #expect(throws: RPCError(.invalidArgument, "organizationId is not a valid organization id")) {
                try await system.linkClient.call(
                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: try #require(other.claim), organizationId: "NOT AN ID"),
                    options: .init(bearerToken: admin.accessToken))
            }
            // Billing status is for ADMIN and BILLING only.
            await #expect(throws: RPCError(.permissionDenied, "only ADMIN or BILLING members of the organization may see its billing")) {
                try await system.linkClient.call(
                    MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: organization.id),
                    options: .init(bearerToken: developer.accessToken))
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func anExpiredRegistrationTokenAsksToClickSetUpAgainAndThrottlingIsRetried(backend: StorageBackend)
        async throws
    {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let token = try await system.simulator.subscribeAndSetUp(identity: "alice", offer: "offer-a")
            let throttle = try await Curl.post(system.simulator.baseURL + "/_sim/throttle", body: #"{"count":2}"#)
            #expect(throttle.status == 204)
            #expect(
                try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token)).claim != nil
            )

            let expire = try await ExternalCommand.run([
                "sqlite3", system.simulator.directory + "/aws-marketplace-sim.sqlite",
                "UPDATE registration_token SET expires_at = '2000-01-01 00:00:00.000'"
            ])
            #expect(expire.status == 0, "\(expire.stderr)")
            await #expect(
                throws: RPCError(
                    .failedPrecondition, "the registration from AWS Marketplace has expired: in AWS Marketplace, click \"Set up your account\" again")
            ) {
                try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token))
            }
        }
    }

    /// Made-up tokens cost the seller's AWS quota: badly shaped ones are refused before any AWS
    /// call, and one address gets 20 a minute.
    @Test(arguments: StorageBackend.allCases) func madeUpRegistrationTokensCannotSpendTheSellersAWSQuota(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            func resolveCalls() async throws -> Int {
                let body = try await Curl.get(system.simulator.baseURL + "/_sim/calls").body
                let counts = try JSONDecoder().decode([String: Int].self, from: Data(body.utf8))
                return counts["AWSMPMeteringService.ResolveCustomer"] ?? 0
            }
            for bad in ["short", "has spaces in it, which base64 never does", String(repeating: "A", count: 5000), "quotes\"and<tags>are-not-tokens"]
            {
                await #expect(
                    throws: RPCError(.invalidArgument, "registrationToken is not a token AWS Marketplace posted (16 to 4096 characters of base64)")
                ) {
                    try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: bad))
                }
            }
            #expect(try await resolveCalls() == 0)

            var exhausted = 0
            for index in 0..<100 {
                do {
                    _ = try await system.linkClient.call(
                        MarketplaceLink.acceptRegistration,
                        AcceptRegistrationRequest(registrationToken: "madeUpTokenNumber\(index)xxxxxxxx"))
                } catch let error as RPCError {
                    if error.code == .resourceExhausted { exhausted += 1 }
                }
            }
            #expect(exhausted == 80)
            #expect(try await resolveCalls() == 20)
        }
    }

    /// A buyer waiting on AcceptRegistration gets an answer within about a second when AWS throttles:
    /// three attempts, not five.
    @Test(arguments: StorageBackend.allCases) func throttledAWSIsRetriedBrieflyWhileABuyerWaits(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let token = try await system.simulator.subscribeAndSetUp(identity: "alice", offer: "offer-a")
            #expect(try await Curl.post(system.simulator.baseURL + "/_sim/throttle", body: #"{"count":1000}"#).status == 204)
            let started = ContinuousClock.now
            await #expect(throws: RPCError.self) {
                try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token))
            }
            #expect(ContinuousClock.now - started < .seconds(3))
            let body = try await Curl.get(system.simulator.baseURL + "/_sim/calls").body
            let calls = try JSONDecoder().decode([String: Int].self, from: Data(body.utf8))["AWSMPMeteringService.ResolveCustomer"] ?? 0
            #expect(calls == 3, "\(calls) ResolveCustomer calls for one click (5 before)")
            #expect(try await Curl.post(system.simulator.baseURL + "/_sim/throttle", body: #"{"count":0}"#).status == 204)
        }
    }

    @Test(arguments: StorageBackend.allCases) func concurrentDuplicateBindsMakeExactlyOneLink(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let accepted = try await system.register()
            let claim = try #require(accepted.claim)
            var organizations: [(LoginResponse, Organization)] = []
            for index in 0..<3 { organizations.append(try await system.adminWithOrganization("Racer \(index)")) }
            let candidates = organizations + organizations
            let outcomes = await withTaskGroup(of: LinkState?.self) { group in
                for (user, organization) in candidates {
                    group.addTask {
                        try? await system.linkClient.call(
                            MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                            options: .init(bearerToken: user.accessToken)
                        ).state
                    }
                }
                return await group.reduce(into: [LinkState?]()) { $0.append($1) }
            }
            #expect(outcomes.compactMap { $0 } == [.active])
            let links = try await system.operatorClient.call(MarketplaceLink.listLinks, ListLinksRequest()).links
            #expect(links.count == 1 && links[0].state == .active)
            // Exactly one organization is billed through the marketplace.
            var billed = 0
            for (user, organization) in organizations {
                let account = try await system.organizationClient.call(
                    Organizations.getBillingAccount, OrganizationRef(organizationId: organization.id),
                    options: .init(bearerToken: user.accessToken))
                if account.provider == .awsMarketplace { billed += 1 }
            }
            #expect(billed == 1)
        }
    }
}
