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

/// marketplace-link's use cases: resolve a registration, bind it to an organization (a durable
/// saga: recorded as BINDING, then organization's SetBillingAccount retried until it answers;
/// after a cancellation, ClearBillingAccount the same way), and report billing status.
final class ContractLinks: Sendable {
    struct Configuration: Sendable {
        /// The committed-contract product; registrations for anything else are refused.
        var productCode: String
        var claimLifetime: TimeInterval = 24 * 3600
        /// Longest wait between SetBillingAccount retries.
        var longestRetryDelay: TimeInterval = 60
        /// AcceptRegistration calls per client address a minute (each costs the seller AWS quota).
        var registrationsPerMinute = 20
    }

    private let configuration: Configuration
    private let pool: DatabasePool
    private let metering: MarketplaceMeteringClient
    private let entitlements: MarketplaceEntitlementClient
    private let organization: ConnectClient
    private let authenticator: AccessTokenAuthenticator
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// Wakes the saga runner when a binding is recorded.
    let wake = WakeSignal()
    /// Each organization's billing status, encoded once for the billing page (the same answer for
    /// every caller allowed to see it); every link write invalidates it.
    private let statuses = ReadThroughCache<String, EncodedMessage<BillingStatus>>()
    /// Roles as organization's CheckAdmin gave them, reused for a few seconds by GetBillingStatus
    /// only (a read-only page). Binding always asks afresh.
    private let viewerRoles = ExpiringCache<String, CheckAdminResponse>(lifetime: .seconds(5))
    /// Links whose saga step is running now.
    private let stepsInFlight = Mutex<Set<String>>([])
    /// AcceptRegistration calls per client address in the current minute.
    private let registrationRate: FixedWindowRateLimiter

    init(configuration: Configuration, pool: DatabasePool, metering: MarketplaceMeteringClient, entitlements: MarketplaceEntitlementClient,
         organization: ConnectClient, authenticator: AccessTokenAuthenticator, now: @escaping @Sendable () -> Date, logger: Logger) {
        self.configuration = configuration
        registrationRate = FixedWindowRateLimiter(limit: configuration.registrationsPerMinute, window: .seconds(60))
        self.pool = pool
        self.metering = metering
        self.entitlements = entitlements
        self.organization = organization
        self.authenticator = authenticator
        self.now = now
        self.logger = logger
    }

    // MARK: Registration

    func acceptRegistration(_ request: AcceptRegistrationRequest, bearerToken: String?, clientIP: String?) async throws -> AcceptRegistrationResponse {
        // Checked before anything costs AWS quota: the token's shape, then the caller's rate.
        let token = request.registrationToken.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Self.isRegistrationTokenShaped(token) else {
            throw MarketplaceLinkError.invalid(field: "registrationToken",
                                               reason: "is not a token AWS Marketplace posted (16 to 4096 characters of base64)")
        }
        guard registrationRate.admit(clientIP ?? "unknown") else { throw MarketplaceLinkError.tooManyRegistrations }
        let customer: ResolvedCustomer
        do {
            customer = try await metering.resolveCustomer(registrationToken: token, interactive: true)
        } catch {
            throw Self.refusal(error)
        }
        guard customer.productCode == configuration.productCode else { throw MarketplaceLinkError.wrongProduct(customer.productCode) }
        let current: [Entitlement]
        do {
            current = try await entitlements.entitlements(productCode: customer.productCode,
                                                          filter: [.customerIdentifier: [customer.customerIdentifier]],
                                                          interactive: true)
        } catch {
            throw Self.refusal(error)
        }
        let at = now()
        let active = OfferRecord.active(current, at: at)
        guard !active.isEmpty else { throw MarketplaceLinkError.noActiveEntitlement }
        let account = customer.customerAWSAccountID ?? active.compactMap(\.customerAWSAccountID).first ?? customer.customerIdentifier
        let offer = OfferRecord(productCode: customer.productCode, awsAccountID: account, licenseArn: customer.licenseArn,
                                entitlements: [:], contractEndsAt: nil).withEntitlements(active)

        if let linkedOrganization = try await pool.read({ db in try LinkStore.liveOrganization(db, awsAccountID: account, productCode: customer.productCode) }) {
            return AcceptRegistrationResponse(claim: nil, claimExpiresAt: nil, offer: offer.summary, alreadyLinked: true,
                                              linkedOrganizationName: await organizationName(linkedOrganization, bearerToken: bearerToken))
        }
        let claim = SecretToken.generate()
        let expiresAt = at + configuration.claimLifetime
        // Events AWS Marketplace sent before this registration are applied with it, in one transaction.
        let registration = try await pool.write { db in
            let registration = try LinkStore.upsertRegistration(db, offer: offer, customerIdentifier: customer.customerIdentifier,
                                                                claimHash: claim.hash, claimExpiresAt: expiresAt, at: at)
            return try SubscriptionLifecycle.applyWaiting(db, to: registration, at: at)
        }
        if let reason = registration.closedReason { throw MarketplaceLinkError.subscriptionEnded(reason) }
        logger.info("registration accepted", metadata: ["aws_account": "\(offer.maskedAccount)", "product": "\(offer.productCode)"])
        return AcceptRegistrationResponse(claim: claim.value, claimExpiresAt: expiresAt, offer: offer.summary, alreadyLinked: false)
    }

    /// AWS's `x-amzn-marketplace-token`: base64 (standard or URL-safe), of a sane length.
    static func isRegistrationTokenShaped(_ token: String) -> Bool {
        (16...4096).contains(token.utf8.count) && token.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "-"), UInt8(ascii: "_"): true
            default: false
            }
        }
    }

    func claimStatus(_ request: ClaimRequest) async throws -> ClaimStatus {
        let at = now()
        guard SecretToken.isWellFormed(request.claim),
              let registration = try await pool.read({ db in try LinkStore.registration(db, claimHash: SecretToken.hash(request.claim)) }) else {
            throw MarketplaceLinkError.claimUnknown
        }
        let state: ClaimState = registration.closedReason != nil ? .ended
            : registration.claimUsedAt != nil ? .bound : (at >= registration.claimExpiresAt ? .expired : .pending)
        return ClaimStatus(state: state, offer: registration.offer.summary, expiresAt: registration.claimExpiresAt)
    }

    // MARK: Binding

    func bind(_ request: BindOrganizationRequest, bearerToken: String?) async throws -> BillingStatus {
        let claims = try await authenticator.authenticate(bearerToken)
        guard claims.emailVerified else { throw MarketplaceLinkError.emailNotVerified }
        guard SecretToken.isWellFormed(request.claim) else { throw MarketplaceLinkError.claimUnknown }
        let organizationID = request.organizationId
        guard (1...64).contains(organizationID.utf8.count) else {
            throw MarketplaceLinkError.invalid(field: "organizationId", reason: "is required (at most 64 characters)")
        }
        let claimHash = SecretToken.hash(request.claim)
        // Fail fast on the claim before asking organization anything.
        _ = try await pool.read { [now] db in try LinkStore.usableRegistration(db, claimHash: claimHash, at: now()) }
        let admin: CheckAdminResponse
        do {
            admin = try await organization.call(Organizations.checkAdmin, MemberRef(organizationId: organizationID, userId: claims.subject),
                                                options: .init(timeout: .seconds(5)))
        } catch {
            if error.code == .invalidArgument {
                throw MarketplaceLinkError.invalid(field: "organizationId", reason: "is not a valid organization id")
            }
            throw MarketplaceLinkError.organizationUnavailable
        }
        guard admin.isAdmin else { throw MarketplaceLinkError.notAdmin }

        let at = now()
        let linkID = try await pool.write { db in
            let registration = try LinkStore.usableRegistration(db, claimHash: claimHash, at: at)
            return try LinkStore.recordBinding(db, registration: registration, organizationID: organizationID, userID: claims.subject, at: at)
        }
        statuses.invalidate()
        logger.info("binding recorded", metadata: ["link_id": "\(linkID)", "organization_id": "\(organizationID)"])
        // The first attempt is made now, so the answer is usually ACTIVE; if the runner picked the
        // link up first, wait for its attempt instead.
        while await !advance(linkID: linkID) {
            try await Task.sleep(for: .milliseconds(20))
        }
        wake.signal()
        return try await status(linkID: linkID)
    }

    /// One saga step for a link that owes organization one: SET_BILLING after a bind (success makes
    /// a BINDING link ACTIVE; a permanent refusal makes it FAILED, which frees the account and the
    /// organization for another binding), CLEAR_BILLING after a cancellation. Anything else is
    /// retried later with backoff. One step per link at a time, so a clear never overtakes a set;
    /// returns false, doing nothing, while another step of the link is running.
    @discardableResult
    func advance(linkID: String) async -> Bool {
        guard stepsInFlight.withLock({ $0.insert(linkID).inserted }) else { return false }
        defer { stepsInFlight.withLock { _ = $0.remove(linkID) } }
        guard let link = try? await pool.read({ db in try LinkStore.link(db, id: linkID) }), let step = link.pendingStep else { return true }
        let outcome: LinkStore.Outcome
        do {
            switch step {
            case .setBilling:
                _ = try await organization.call(Organizations.setBillingAccount, Self.setBillingRequest(link), options: .init(timeout: .seconds(5)))
            case .clearBilling:
                let request = ClearBillingAccountRequest(organizationId: link.organizationID, linkId: link.id,
                                                         reason: "the AWS Marketplace subscription ended")
                _ = try await organization.call(Organizations.clearBillingAccount, request, options: .init(timeout: .seconds(5)))
            }
            outcome = .done
        } catch {
            if LinkLifecycle.isPermanent(error.code) {
                outcome = .failed(error.message)
            } else {
                let delay = min(pow(2, Double(link.attempts)), configuration.longestRetryDelay)
                outcome = .retry(at: now() + delay, error: "\(error)")
            }
        }
        let at = now()
        do {
            try await pool.write { db in try LinkStore.record(db, outcome, of: step, linkID: linkID, at: at) }
            statuses.invalidate()
        } catch {
            logger.error("cannot record a saga step", metadata: ["link_id": "\(linkID)", "error": "\(error)"])
        }
        logger.info("saga step", metadata: ["link_id": "\(linkID)", "step": "\(step.rawValue)", "outcome": "\(outcome)"])
        return true
    }

    /// The saga runner: advances every link whose step is due, including those left by a crash.
    func runSagaSteps() async {
        while !Task.isCancelled {
            let due = (try? await pool.read { [now] db in try LinkStore.dueSteps(db, at: now()) }) ?? []
            for linkID in due where !Task.isCancelled {
                await advance(linkID: linkID)
            }
            await wake.wait(upTo: .seconds(1))
        }
    }

    /// Links changed outside a saga step (a subscription event): the billing page reads afresh and
    /// the runner looks for due steps now.
    func linksChanged() {
        statuses.invalidate()
        wake.signal()
    }

    private static func setBillingRequest(_ link: LinkStore.Link) -> SetBillingAccountRequest {
        SetBillingAccountRequest(
            organizationId: link.organizationID, provider: .awsMarketplace, awsAccountId: link.offer.awsAccountID, linkId: link.id,
            contract: ContractSummary(productCode: link.offer.productCode, offerId: link.offer.licenseArn ?? link.offer.productCode,
                                      dimensions: link.offer.entitlements, endsAt: link.offer.contractEndsAt),
            linkedBy: link.linkedBy)
    }

    // MARK: Status

    func billingStatus(_ request: BillingStatusRequest, bearerToken: String?) async throws -> EncodedMessage<BillingStatus> {
        let claims = try await authenticator.authenticate(bearerToken)
        let organizationID = request.organizationId
        let check: CheckAdminResponse
        do {
            check = try await viewerRoles.value(for: "\(organizationID) \(claims.subject)") { [organization] () async throws(RPCError) in
                try await organization.call(Organizations.checkAdmin, MemberRef(organizationId: organizationID, userId: claims.subject),
                                            options: .init(timeout: .seconds(5)))
            }
        } catch {
            throw error.code == .invalidArgument ? MarketplaceLinkError.notFound : MarketplaceLinkError.organizationUnavailable
        }
        guard let role = check.role else { throw MarketplaceLinkError.notFound }
        guard role == .admin || role == .billing else { throw MarketplaceLinkError.billingRoleRequired }
        let status = try await statuses.value(for: organizationID) { [pool] in
            let link = try await pool.read { db in try LinkStore.latestLink(db, organizationID: organizationID) }
            return try EncodedMessage(link?.status ?? BillingStatus(organizationId: organizationID, provider: "NONE"))
        }
        return status!  // the loader always has an answer
    }

    func list(_ request: ListLinksRequest) async throws -> LinkList {
        LinkList(links: try await pool.read { db in try LinkStore.links(db, state: request.state, limit: 1000) }.map(\.status))
    }

    private func status(linkID: String) async throws -> BillingStatus {
        guard let link = try await pool.read({ db in try LinkStore.link(db, id: linkID) }) else { throw MarketplaceLinkError.notFound }
        return link.status
    }

    /// The organization's name, if the caller (by their token) is one of its members.
    private func organizationName(_ organizationID: String, bearerToken: String?) async -> String? {
        guard let bearerToken else { return nil }
        return try? await organization.call(Organizations.getOrganization, OrganizationRef(organizationId: organizationID),
                                            options: .init(timeout: .seconds(5), bearerToken: bearerToken)).name
    }

    private static func refusal(_ error: AWSMarketplaceError) -> MarketplaceLinkError {
        switch error.kind {
        case .invalidToken: .registrationInvalid
        case .expiredToken: .registrationExpired
        default: .awsUnavailable("\(error.kind)")
        }
    }
}
