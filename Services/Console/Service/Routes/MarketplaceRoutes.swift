import Contracts
import Foundation
import Hummingbird
import RPCCore

/// The AWS Marketplace part of the journey: the fulfillment POST, the offer, choosing the
/// organization to bill, and the confirmation that links it.
extension ConsoleApp {
    func addMarketplaceRoutes(to router: Router<ConsoleRequestContext>) {
        // AWS Marketplace POSTs the buyer's browser here from another site, so there is no form
        // token to check, and SameSite=Lax cookies (the session) are not sent: nothing here may
        // depend on them. The AWS token is redeemed at once (it lives only hours); only
        // marketplace-link's claim is kept, in a cookie.
        page(router, .post, "marketplace/setup", checkForm: false) { [self] visit, _ in
            let token = visit.field("x-amzn-marketplace-token")
            guard !token.isEmpty else {
                return visit.render(
                    .message(
                        .badRequest, title: "No registration from AWS Marketplace",
                        "This address is where AWS Marketplace sends you when you click \"Set up your account\". Go back to your subscription in AWS Marketplace and click it again."
                    ))
            }
            let accepted: AcceptRegistrationResponse
            do throws(RPCError) {
                accepted = try await upstreams.marketplaceLink.call(
                    MarketplaceLink.acceptRegistration,
                    AcceptRegistrationRequest(registrationToken: token), options: anonymous(visit))
            } catch {
                guard [.invalidArgument, .failedPrecondition, .notFound].contains(error.code) else { throw error }
                return visit.render(
                    .message(
                        error.code == .invalidArgument ? .badRequest : .conflict,
                        title: "We could not accept this registration", Problems.sentence(error.message),
                        links: [("/login", "Sign in to the console")]))
            }
            guard !accepted.alreadyLinked, let claim = accepted.claim else {
                let organization = accepted.linkedOrganizationName.map { "the organization \($0)" } ?? "an organization"
                return visit.render(
                    .message(
                        .conflict, title: "Already linked",
                        "The committed contract of AWS account \(accepted.offer.awsAccountId) is already linked to \(organization): one contract bills one organization. Sign in to see its billing page.",
                        links: [("/organizations", "Your organizations")]))
            }
            let lifetime = Int((accepted.claimExpiresAt ?? Date().addingTimeInterval(86400)).timeIntervalSinceNow)
            visit.setCookie(jar.claim, claim, maxAge: lifetime)
            return visit.redirect("/marketplace/onboarding")
        }

        page(router, .get, "marketplace/onboarding") { [self] visit, _ in
            let status: ClaimStatus
            switch try await pendingClaim(visit) {
            case .pending(_, let claimStatus): status = claimStatus
            case .answered(let response): return response
            }
            let step = OnboardingStep.next(buyer: visit.buyer?.onboarding, hasPendingClaim: true)
            guard step == .signIn else { return visit.redirect(step.path) }
            return visit.render(Page(title: "Your AWS Marketplace contract", template: "onboarding", values: Self.offerValues(status.offer)))
        }

        page(router, .get, "marketplace/link") { [self] visit, _ in
            try await chooseOrganizationPage(visit, newName: "", errors: [])
        }

        page(
            router, .post, "marketplace/link/new-organization",
            retry: { [self] visit in
                try await choosePage(visit, newName: visit.field("name"), errors: [])
            }
        ) { [self] visit, _ in
            switch try await createOrganization(visit) {
            case .created(let organization):
                return visit.redirect("/marketplace/link/confirm?organizationId=\(organization.id)")
            case .refused(let problems):
                return try await chooseOrganizationPage(visit, newName: visit.field("name"), errors: problems)
            }
        }

        page(router, .get, "marketplace/link/confirm") { [self] visit, _ in
            let buyer = try requireBuyer(visit)
            let status: ClaimStatus
            switch try await pendingClaim(visit) {
            case .pending(_, let claimStatus): status = claimStatus
            case .answered(let response): return response
            }
            let organizationID = visit.request.uri.queryParameters.get("organizationId") ?? ""
            guard !organizationID.isEmpty else {
                return try await chooseOrganizationPage(visit, newName: "", errors: [PageError(message: "Choose an organization, or create one.")])
            }
            let organization = try await upstreams.organization.call(
                Organizations.getOrganization, OrganizationRef(organizationId: organizationID),
                options: asBuyer(visit, buyer))
            guard organization.canLinkBilling else {
                return try await chooseOrganizationPage(
                    visit, newName: "",
                    errors: [
                        PageError(
                            message:
                                "Only an admin of \(organization.name) can link its billing: ask one of its admins, or create an organization.")
                    ])
            }
            var values = Self.offerValues(status.offer)
            values["organizationName"] = organization.name
            values["organizationId"] = organization.id
            return visit.render(Page(title: "Confirm billing through AWS Marketplace", template: "link-confirm", values: values))
        }

        page(
            router, .post, "marketplace/link/confirm",
            retry: { [self] visit in
                try await choosePage(visit, newName: "", errors: [])
            }
        ) { [self] visit, _ in
            let buyer = try requireBuyer(visit)
            guard let claim = visit.claim else { return visit.render(Self.noClaimPage) }
            let organizationID = visit.field("organizationId")
            do throws(RPCError) {
                let bound = try await upstreams.marketplaceLink.call(
                    MarketplaceLink.bindOrganization,
                    BindOrganizationRequest(claim: claim, organizationId: organizationID),
                    options: asBuyer(visit, buyer))
                visit.deleteCookie(jar.claim)
                logger.info("organization linked", metadata: ["organization": "\(bound.organizationId)", "state": "\(bound.state?.rawValue ?? "")"])
                return visit.redirect("/organizations/\(bound.organizationId)/billing")
            } catch {
                guard error.code == .failedPrecondition || error.code == .permissionDenied || error.code == .notFound else { throw error }
                return try await chooseOrganizationPage(visit, newName: "", errors: [PageError(message: Problems.sentence(error.message))])
            }
        }
    }

    // MARK: Pieces

    enum ClaimLookup {
        case pending(claim: String, status: ClaimStatus)
        /// No usable claim: the page that says so.
        case answered(Response)
    }

    static var noClaimPage: Page {
        .message(
            .notFound, title: "Nothing to link yet",
            "No AWS Marketplace registration is waiting in this browser. In AWS Marketplace, open your subscription and click \"Set up your account\"; it brings you back here.",
            links: [("/organizations", "Your organizations")])
    }

    /// The claim in this browser's cookie, if marketplace-link still has it pending.
    func pendingClaim(_ visit: Visit) async throws -> ClaimLookup {
        guard let claim = visit.claim else { return .answered(visit.render(Self.noClaimPage)) }
        let status: ClaimStatus
        do throws(RPCError) {
            status = try await upstreams.marketplaceLink.call(MarketplaceLink.getClaim, ClaimRequest(claim: claim), options: anonymous(visit))
        } catch {
            guard error.code == .notFound || error.code == .invalidArgument else { throw error }
            visit.deleteCookie(jar.claim)
            return .answered(visit.render(Self.noClaimPage))
        }
        switch status.state {
        case .pending:
            return .pending(claim: claim, status: status)
        case .bound:
            visit.deleteCookie(jar.claim)
            return .answered(
                visit.render(
                    .message(
                        .conflict, title: "Already linked",
                        "This AWS Marketplace contract is already linked to an organization. Its admins and billing members see it on the organization's billing page.",
                        links: [("/organizations", "Your organizations")])))
        case .expired, .ended:
            visit.deleteCookie(jar.claim)
            return .answered(
                visit.render(
                    .message(
                        .gone, title: "This registration has expired",
                        "The registration from AWS Marketplace is no longer valid. In AWS Marketplace, open your subscription and click \"Set up your account\" again."
                    )))
        }
    }

    func chooseOrganizationPage(_ visit: Visit, newName: String, errors: [PageError]) async throws -> Response {
        let buyer = try requireBuyer(visit)
        guard buyer.claims.onboardingState == .complete else { return visit.redirect(OnboardingStep.businessProfile.path) }
        return visit.render(try await choosePage(visit, newName: newName, errors: errors))
    }

    /// The organizations the buyer may bill, those they may not (and whom to ask), and a form
    /// to create one.
    func choosePage(_ visit: Visit, newName: String, errors: [PageError]) async throws -> Page {
        let buyer = try requireBuyer(visit)
        guard case .pending(_, let status) = try await pendingClaim(visit) else { return Self.noClaimPage }
        let options = asBuyer(visit, buyer)
        let organizations = try await upstreams.organization.call(Organizations.listMyOrganizations, Empty(), options: options).organizations
        var rows: [[String: Any]] = []
        for organization in organizations {
            var row: [String: Any] = ["id": organization.id, "name": organization.name, "role": organization.role.rawValue]
            if organization.canLinkBilling {
                let billing = try await upstreams.organization.call(
                    Organizations.getBillingAccount, OrganizationRef(organizationId: organization.id),
                    options: options)
                row["billed"] = billing.provider == .awsMarketplace
                row["selectable"] = billing.provider != .awsMarketplace
            } else {
                row["notAdmin"] = true
                row["admins"] = try await adminNames(of: organization.id, visit: visit, buyer: buyer)
            }
            rows.append(row)
        }
        var values = Self.offerValues(status.offer)
        values["organizations"] = rows
        values["hasOrganizations"] = !rows.isEmpty
        values["anySelectable"] = rows.contains { $0["selectable"] as? Bool == true }
        var page = Page(
            title: "Choose the organization to bill", template: "link-choose", values: values,
            fields: [Field(name: "name", label: "Organization name", value: newName, autocomplete: "organization")])
        page.attach(errors)
        if !errors.isEmpty { page.status = .badRequest }
        return page
    }

    /// "Ann Admin (ann@example.com)" for each ADMIN of an organization the buyer belongs to.
    func adminNames(of organizationID: String, visit: Visit, buyer: SignedInBuyer) async throws -> String {
        let members = try await upstreams.organization.call(
            Organizations.listMembers, OrganizationRef(organizationId: organizationID),
            options: asBuyer(visit, buyer)
        ).members
        let admins = members.filter { $0.role == .admin }.map(\.userId)
        let users = try await upstreams.users(admins, clientIP: visit.clientIP)
        let names = admins.compactMap { users[$0] }.map { "\($0.fullName) (\($0.email))" }
        return names.isEmpty ? "an admin" : names.joined(separator: " or ")
    }

    /// What a page shows of an offer: the account masked (as marketplace-link gives it).
    static func offerValues(_ offer: OfferSummary) -> [String: Any] {
        [
            "productCode": offer.productCode,
            "awsAccount": AWSAccountMask.account(offer.awsAccountId),
            "entitlements": offer.entitlements.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] },
            "contractEnds": offer.contractEndsAt.map(Self.day) ?? "not stated"
        ]
    }

    static func day(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day())
    }
}
