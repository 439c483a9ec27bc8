import Foundation

/// The simulator's starting state, read from a JSON file (`--seed`): the seller's product and
/// keys, private offers, and buyer accounts with their IAM identities.
public struct SimulatorSeed: Codable, Sendable {
    public struct SellerKey: Codable, Sendable {
        public var accessKeyId: String
        public var secretAccessKey: String
    }

    public struct Product: Codable, Sendable {
        public var code: String
        public var name: String
    }

    public struct Offer: Codable, Sendable {
        public var id: String
        public var buyerAccountId: String
        public var committedAmountUSD: Int
        public var termMonths: Int
        /// Dimension name to the quantity the contract grants.
        public var dimensions: [String: Int]
        public var expiresAt: Date
    }

    public struct Identity: Codable, Sendable {
        public var name: String
        public var managedPolicies: [String]
        public var actions: [String]
    }

    public struct Buyer: Codable, Sendable {
        public var accountId: String
        public var email: String
        public var identities: [Identity]
    }

    public var sellerKeys: [SellerKey]
    public var product: Product
    public var offers: [Offer]
    public var buyers: [Buyer]

    /// Reads a seed file; dates are RFC 3339.
    public static func load(path: String) throws -> SimulatorSeed {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(SimulatorSeed.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
