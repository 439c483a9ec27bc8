import Contracts
import RPCCore

/// The wire messages of the records the use cases answer with, built here in the handlers layer.
/// Users see the AWS account masked, also inside the license ARN.
extension OfferRecord {
    var summary: OfferSummary {
        OfferSummary(
            productCode: productCode, awsAccountId: maskedAccount, licenseArn: licenseArn.map(AWSAccountMask.arn), entitlements: entitlements,
            contractEndsAt: contractEndsAt)
    }
}

extension LinkStore.Link {
    var status: BillingStatus {
        BillingStatus(
            organizationId: organizationID, provider: "AWS_MARKETPLACE", linkId: id, state: state, offer: offer.summary,
            linkedBy: linkedBy, linkedAt: linkedAt, failureReason: failureReason)
    }

    /// The billing page of `organizationID`, encoded once for every viewer (`BillingStatusPage`).
    static func encodedStatus(organizationID: String, link: LinkStore.Link?) throws -> EncodedMessage<BillingStatus> {
        try EncodedMessage(link?.status ?? BillingStatus(organizationId: organizationID, provider: "NONE"))
    }
}

extension AcceptRegistrationResponse {
    init(_ accepted: AcceptedRegistration) {
        switch accepted {
        case .claimed(let claim, let expiresAt, let offer):
            self.init(claim: claim, claimExpiresAt: expiresAt, offer: offer.summary, alreadyLinked: false)
        case .alreadyLinked(let offer, let organizationName):
            self.init(claim: nil, claimExpiresAt: nil, offer: offer.summary, alreadyLinked: true, linkedOrganizationName: organizationName)
        }
    }
}
