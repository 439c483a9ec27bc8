import AWSMarketplace
import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import Logging
import RPCCore
import ServiceRuntime
import Synchronization

/// Registrations: AWS Marketplace's token (from "Set up your account") redeemed for a claim the
/// buyer's browser keeps until they bind it, and what a claim is worth now.
final class Registrations: Sendable {
    struct Configuration: Sendable {
        /// The committed-contract product; registrations for anything else are refused.
        var productCode: String
        var claimLifetime: TimeInterval = 24 * 3600
        /// AcceptRegistration calls per client address a minute (each costs the seller AWS quota).
        var registrationsPerMinute = 20
    }

    private let configuration: Configuration
    private let storage: any LinkStorage
    private let metering: MarketplaceMeteringClient
    private let entitlements: MarketplaceEntitlementClient
    private let organization: ConnectClient
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// AcceptRegistration calls per client address in the current minute.
    private let registrationRate: FixedWindowRateLimiter

    init(
        configuration: Configuration, storage: any LinkStorage, metering: MarketplaceMeteringClient, entitlements: MarketplaceEntitlementClient,
        organization: ConnectClient, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.configuration = configuration
        registrationRate = FixedWindowRateLimiter(limit: configuration.registrationsPerMinute, window: .seconds(60))
        self.storage = storage
        self.metering = metering
        self.entitlements = entitlements
        self.organization = organization
        self.now = now
        self.logger = logger
    }

    func acceptRegistration(_ request: AcceptRegistrationRequest, bearerToken: String?, clientIP: String?) async throws -> AcceptedRegistration {
        // Checked before anything costs AWS quota: the token's shape, then the caller's rate.
        let token = request.registrationToken.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Self.isRegistrationTokenShaped(token) else {
            throw MarketplaceLinkError.invalid(
                field: "registrationToken",
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
            current = try await entitlements.entitlements(
                productCode: customer.productCode,
                filter: [.customerIdentifier: [customer.customerIdentifier]],
                interactive: true)
        } catch {
            throw Self.refusal(error)
        }
        let at = now()
        let active = OfferRecord.active(current, at: at)
        guard !active.isEmpty else { throw MarketplaceLinkError.noActiveEntitlement }
        let account = customer.customerAWSAccountID ?? active.compactMap(\.customerAWSAccountID).first ?? customer.customerIdentifier
        let offer = OfferRecord(
            productCode: customer.productCode, awsAccountID: account, licenseArn: customer.licenseArn,
            entitlements: [:], contractEndsAt: nil
        ).withEntitlements(active)

        if let linkedOrganization = try await storage.liveOrganization(awsAccountID: account, productCode: customer.productCode) {
            return .alreadyLinked(offer: offer, organizationName: await organizationName(linkedOrganization, bearerToken: bearerToken))
        }
        let claim = SecretToken.generate()
        let expiresAt = at + configuration.claimLifetime
        // Events AWS Marketplace sent before this registration are applied with it, in one transaction.
        let registration = try await storage.register(
            offer: offer, customerIdentifier: customer.customerIdentifier, claimHash: claim.hash, claimExpiresAt: expiresAt, at: at)
        if let reason = registration.closedReason { throw MarketplaceLinkError.subscriptionEnded(reason) }
        logger.info("registration accepted", metadata: ["aws_account": "\(offer.maskedAccount)", "product": "\(offer.productCode)"])
        return .claimed(claim: claim.value, expiresAt: expiresAt, offer: offer)
    }

    /// AWS's `x-amzn-marketplace-token`: base64 (standard or URL-safe), of a sane length.
    static func isRegistrationTokenShaped(_ token: String) -> Bool {
        (16...4096).contains(token.utf8.count)
            && token.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                    UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default: false
                }
            }
    }

    /// The claim's registration and what can be done with the claim now.
    func claimStatus(_ request: ClaimRequest) async throws -> (state: ClaimState, registration: LinkStore.Registration) {
        let at = now()
        guard SecretToken.isWellFormed(request.claim),
            let registration = try await storage.registration(claimHash: SecretToken.hash(request.claim))
        else {
            throw MarketplaceLinkError.claimUnknown
        }
        return (ClaimRules.state(of: registration, at: at), registration)
    }

    /// The organization's name, if the caller (by their token) is one of its members.
    private func organizationName(_ organizationID: String, bearerToken: String?) async -> String? {
        guard let bearerToken else { return nil }
        return try? await organization.call(
            Organizations.getOrganization, OrganizationRef(organizationId: organizationID),
            options: .init(timeout: .seconds(5), bearerToken: bearerToken)
        ).name
    }

    private static func refusal(_ error: AWSMarketplaceError) -> MarketplaceLinkError {
        switch error.kind {
        case .invalidToken: .registrationInvalid
        case .expiredToken: .registrationExpired
        default: .awsUnavailable("\(error.kind)")
        }
    }
}

/// What accepting a registration token came to.
enum AcceptedRegistration: Sendable {
    /// A claim to bind the contract to an organization, until it expires.
    case claimed(claim: String, expiresAt: Date, offer: OfferRecord)
    /// The AWS account's contract is bound already; the organization's name if the caller is a member.
    case alreadyLinked(offer: OfferRecord, organizationName: String?)
}

extension OfferRecord {
    /// The AWS account with all but its last four digits hidden, for logs and pages.
    var maskedAccount: String { AWSAccountMask.account(awsAccountID) }
}
