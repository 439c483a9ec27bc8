/// Whether a buyer's IAM identity may view and accept a private offer, by the seed document's
/// rule: `AWSMarketplaceRead-only` and `AWSMarketplaceManageSubscriptions`, or
/// `AWSMarketplaceFullAccess`, or the actions `aws-marketplace:ListPrivateListings` and
/// `aws-marketplace:ViewSubscriptions`.
enum BuyerPermissions {
    static func canViewAndAccept(managedPolicies: Set<String>, actions: Set<String>) -> Bool {
        managedPolicies.isSuperset(of: ["AWSMarketplaceRead-only", "AWSMarketplaceManageSubscriptions"])
            || managedPolicies.contains("AWSMarketplaceFullAccess")
            || actions.contains("aws-marketplace:*")
            || actions.isSuperset(of: ["aws-marketplace:ListPrivateListings", "aws-marketplace:ViewSubscriptions"])
    }

    /// What to tell an identity that lacks them.
    static let missingPermissionsMessage = """
        To view and accept this private offer your IAM identity needs the managed policies \
        AWSMarketplaceRead-only and AWSMarketplaceManageSubscriptions, or AWSMarketplaceFullAccess, \
        or the actions aws-marketplace:ListPrivateListings and aws-marketplace:ViewSubscriptions.
        """
}
