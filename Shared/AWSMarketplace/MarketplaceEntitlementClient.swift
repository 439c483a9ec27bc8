import Foundation

/// The AWS Marketplace Entitlement Service (botocore `marketplace-entitlement`, 2017-01-11),
/// on its JSON 1.1 protocol: `GetEntitlements`.
public struct MarketplaceEntitlementClient: Sendable {
    public let transport: AWSJSONClient

    public init(transport: AWSJSONClient) {
        self.transport = transport
    }

    /// The service has one public endpoint.
    public static let endpoint = URL(string: "https://entitlement.marketplace.us-east-1.amazonaws.com/")!

    /// What `GetEntitlements` can filter on.
    public enum Filter: String, Sendable {
        case customerIdentifier = "CUSTOMER_IDENTIFIER"
        case customerAWSAccountID = "CUSTOMER_AWS_ACCOUNT_ID"
        case dimension = "DIMENSION"
        case licenseArn = "LICENSE_ARN"
    }

    /// Every entitlement of `productCode` that matches `filter`, following `NextToken` through
    /// every page, including empty pages that still carry one.
    public func entitlements(
        productCode: String, filter: [Filter: [String]], pageSize: Int = 25, maxPages: Int = 1000,
        interactive: Bool = false
    )
        async throws(AWSMarketplaceError) -> [Entitlement]
    {
        var all: [Entitlement] = []
        var nextToken: String?
        for _ in 0..<maxPages {
            let page: EntitlementsPage = try await transport.call(
                target: "AWSMPEntitlementService.GetEntitlements",
                input: GetEntitlementsInput(
                    productCode: productCode,
                    filter: Dictionary(uniqueKeysWithValues: filter.map { ($0.key.rawValue, $0.value) }),
                    nextToken: nextToken, maxResults: min(max(pageSize, 1), 25)),
                interactive: interactive)
            all += page.entitlements
            guard let token = page.nextToken, !token.isEmpty else { return all }
            nextToken = token
        }
        throw AWSMarketplaceError(kind: .other("TooManyPages"), message: "GetEntitlements returned more than \(maxPages) pages")
    }
}

struct GetEntitlementsInput: Encodable {
    var productCode: String
    var filter: [String: [String]]
    var nextToken: String?
    var maxResults: Int

    enum CodingKeys: String, CodingKey {
        case productCode = "ProductCode"
        case filter = "Filter"
        case nextToken = "NextToken"
        case maxResults = "MaxResults"
    }
}

struct EntitlementsPage: Decodable {
    var entitlements: [Entitlement]
    var nextToken: String?

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entitlements = try container.decodeIfPresent([Entitlement].self, forKey: .entitlements) ?? []
        nextToken = try container.decodeIfPresent(String.self, forKey: .nextToken)
    }

    enum CodingKeys: String, CodingKey {
        case entitlements = "Entitlements"
        case nextToken = "NextToken"
    }
}

/// One entitlement: what a customer may use of a product's dimension, until when.
public struct Entitlement: Codable, Sendable, Equatable {
    /// `Value`: exactly one of its members is set.
    public enum Value: Sendable, Equatable {
        case integer(Int)
        case double(Double)
        case boolean(Bool)
        case string(String)
    }

    public var productCode: String
    public var dimension: String
    public var customerIdentifier: String
    public var customerAWSAccountID: String?
    public var value: Value?
    public var expirationDate: Date?
    public var licenseArn: String?

    public init(
        productCode: String, dimension: String, customerIdentifier: String, customerAWSAccountID: String? = nil,
        value: Value? = nil, expirationDate: Date? = nil, licenseArn: String? = nil
    ) {
        self.productCode = productCode
        self.dimension = dimension
        self.customerIdentifier = customerIdentifier
        self.customerAWSAccountID = customerAWSAccountID
        self.value = value
        self.expirationDate = expirationDate
        self.licenseArn = licenseArn
    }

    enum CodingKeys: String, CodingKey {
        case productCode = "ProductCode"
        case dimension = "Dimension"
        case customerIdentifier = "CustomerIdentifier"
        case customerAWSAccountID = "CustomerAWSAccountId"
        case value = "Value"
        case expirationDate = "ExpirationDate"
        case licenseArn = "LicenseArn"
    }
}

extension Entitlement.Value: Codable {
    private enum CodingKeys: String, CodingKey {
        case integer = "IntegerValue"
        case double = "DoubleValue"
        case boolean = "BooleanValue"
        case string = "StringValue"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let value = try container.decodeIfPresent(Int.self, forKey: .integer) {
            self = .integer(value)
        } else if let value = try container.decodeIfPresent(Double.self, forKey: .double) {
            self = .double(value)
        } else if let value = try container.decodeIfPresent(Bool.self, forKey: .boolean) {
            self = .boolean(value)
        } else if let value = try container.decodeIfPresent(String.self, forKey: .string) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "an entitlement Value with no member set"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .integer(let value): try container.encode(value, forKey: .integer)
        case .double(let value): try container.encode(value, forKey: .double)
        case .boolean(let value): try container.encode(value, forKey: .boolean)
        case .string(let value): try container.encode(value, forKey: .string)
        }
    }
}
