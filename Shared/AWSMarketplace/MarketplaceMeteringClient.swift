import Foundation

/// The AWS Marketplace Metering Service (botocore `meteringmarketplace`, 2016-01-14):
/// `ResolveCustomer` and `BatchMeterUsage`.
public struct MarketplaceMeteringClient: Sendable {
    public let transport: AWSJSONClient

    public init(transport: AWSJSONClient) {
        self.transport = transport
    }

    /// The public endpoint of a region.
    public static func endpoint(region: String) -> URL {
        URL(string: "https://metering.marketplace.\(region).amazonaws.com/")!
    }

    /// Who a registration token (the `x-amzn-marketplace-token` of the fulfillment POST) belongs to.
    /// The token is sent only in the signed body, never logged.
    public func resolveCustomer(registrationToken: String, interactive: Bool = false) async throws(AWSMarketplaceError) -> ResolvedCustomer {
        try await transport.call(
            target: "AWSMPMeteringService.ResolveCustomer",
            input: ResolveCustomerInput(registrationToken: registrationToken), interactive: interactive)
    }

    /// Reports usage: at most 25 records a call, of one product. Records AWS did not process come
    /// back in `unprocessed` and should be sent again. A record that AWS refuses makes the whole
    /// call fail (`timestampOutOfBounds`, `invalidUsageDimension`, `invalidLicense`...).
    public func batchMeterUsage(productCode: String?, records: [UsageRecord]) async throws(AWSMarketplaceError) -> BatchMeterUsageResult {
        guard (1...25).contains(records.count) else {
            throw AWSMarketplaceError(kind: .invalidParameter, message: "BatchMeterUsage takes 1 to 25 records, got \(records.count)")
        }
        return try await transport.call(
            target: "AWSMPMeteringService.BatchMeterUsage",
            input: BatchMeterUsageInput(productCode: productCode, usageRecords: records))
    }
}

struct ResolveCustomerInput: Encodable {
    var registrationToken: String
    enum CodingKeys: String, CodingKey { case registrationToken = "RegistrationToken" }
}

/// `ResolveCustomer`'s answer.
public struct ResolvedCustomer: Codable, Sendable, Equatable {
    public var customerIdentifier: String
    public var customerAWSAccountID: String?
    public var productCode: String
    public var licenseArn: String?

    public init(customerIdentifier: String, customerAWSAccountID: String?, productCode: String, licenseArn: String?) {
        self.customerIdentifier = customerIdentifier
        self.customerAWSAccountID = customerAWSAccountID
        self.productCode = productCode
        self.licenseArn = licenseArn
    }

    enum CodingKeys: String, CodingKey {
        case customerIdentifier = "CustomerIdentifier"
        case customerAWSAccountID = "CustomerAWSAccountId"
        case productCode = "ProductCode"
        case licenseArn = "LicenseArn"
    }
}

/// One usage record. The customer is given by AWS account id and license ARN (what AWS asks of
/// new integrations, and what concurrent agreements need) or, the deprecated way, by customer
/// identifier; AWS refuses a record with both an identifier and an account id.
public struct UsageRecord: Codable, Sendable, Equatable, Hashable {
    public var timestamp: Date
    public var customerIdentifier: String?
    public var customerAWSAccountID: String?
    public var licenseArn: String?
    public var dimension: String
    public var quantity: Int?

    public init(
        timestamp: Date, customerIdentifier: String? = nil, customerAWSAccountID: String? = nil, licenseArn: String? = nil,
        dimension: String, quantity: Int?
    ) {
        self.timestamp = timestamp
        self.customerIdentifier = customerIdentifier
        self.customerAWSAccountID = customerAWSAccountID
        self.licenseArn = licenseArn
        self.dimension = dimension
        self.quantity = quantity
    }

    enum CodingKeys: String, CodingKey {
        case timestamp = "Timestamp"
        case customerIdentifier = "CustomerIdentifier"
        case customerAWSAccountID = "CustomerAWSAccountId"
        case licenseArn = "LicenseArn"
        case dimension = "Dimension"
        case quantity = "Quantity"
    }
}

struct BatchMeterUsageInput: Encodable {
    var productCode: String?
    var usageRecords: [UsageRecord]
    enum CodingKeys: String, CodingKey {
        case productCode = "ProductCode"
        case usageRecords = "UsageRecords"
    }
}

/// `BatchMeterUsage`'s answer.
public struct BatchMeterUsageResult: Codable, Sendable, Equatable {
    public struct Result: Codable, Sendable, Equatable {
        public var usageRecord: UsageRecord?
        public var meteringRecordID: String?
        /// `Success`, `CustomerNotSubscribed` or `DuplicateRecord`.
        public var status: String?

        enum CodingKeys: String, CodingKey {
            case usageRecord = "UsageRecord"
            case meteringRecordID = "MeteringRecordId"
            case status = "Status"
        }
    }

    public var results: [Result]
    public var unprocessed: [UsageRecord]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        results = try container.decodeIfPresent([Result].self, forKey: .results) ?? []
        unprocessed = try container.decodeIfPresent([UsageRecord].self, forKey: .unprocessed) ?? []
    }

    enum CodingKeys: String, CodingKey {
        case results = "Results"
        case unprocessed = "UnprocessedRecords"
    }
}
