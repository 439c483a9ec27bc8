import Contracts

/// What users are shown of stored offers and links: the wire messages are built here, in the
/// domain, never in storage. The AWS account is masked, also inside the license ARN.
extension OfferRecord {
    /// All but the last four digits hidden.
    var maskedAccount: String { AWSAccountMask.account(awsAccountID) }

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
}
