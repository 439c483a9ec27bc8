/// A failure of an AWS Marketplace API call, by the AWS error type it reported.
public struct AWSMarketplaceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error types the seller APIs document; anything else arrives as `.other`.
    public enum Kind: Sendable, Equatable {
        case invalidToken
        case expiredToken
        case throttling
        case internalServiceError
        case disabledApi
        case invalidProductCode
        case invalidCustomerIdentifier
        case invalidUsageDimension
        case invalidUsageAllocations
        case invalidTag
        case timestampOutOfBounds
        case invalidLicense
        case invalidParameter
        case unrecognizedClient
        case invalidSignature
        case accessDenied
        /// A type this client does not know, with AWS's name for it.
        case other(String)
        /// No answer: a connection failure or the per-call timeout.
        case unreachable

        init(awsType: String) {
            switch awsType {
            case "InvalidTokenException": self = .invalidToken
            case "ExpiredTokenException": self = .expiredToken
            case "ThrottlingException", "Throttling", "TooManyRequestsException": self = .throttling
            case "InternalServiceErrorException": self = .internalServiceError
            case "DisabledApiException": self = .disabledApi
            case "InvalidProductCodeException": self = .invalidProductCode
            case "InvalidCustomerIdentifierException": self = .invalidCustomerIdentifier
            case "InvalidUsageDimensionException": self = .invalidUsageDimension
            case "InvalidUsageAllocationsException": self = .invalidUsageAllocations
            case "InvalidTagException": self = .invalidTag
            case "TimestampOutOfBoundsException": self = .timestampOutOfBounds
            case "InvalidLicenseException": self = .invalidLicense
            case "InvalidParameterException": self = .invalidParameter
            case "UnrecognizedClientException": self = .unrecognizedClient
            case "InvalidSignatureException": self = .invalidSignature
            case "AccessDeniedException": self = .accessDenied
            default: self = .other(awsType)
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// The HTTP status, when an answer came.
    public var status: Int?

    public init(kind: Kind, message: String, status: Int? = nil) {
        self.kind = kind
        self.message = message
        self.status = status
    }

    /// Worth another try after a backoff: throttling, AWS's own failures, no answer.
    public var isRetryable: Bool {
        switch kind {
        case .throttling, .internalServiceError, .unreachable: true
        default: (status ?? 0) >= 500
        }
    }

    public var description: String { "\(kind): \(message)" }

    /// The error type from a JSON 1.1 error: the `X-Amzn-Errortype` header or the body's `__type`,
    /// without the namespace before `#` and anything after `:`.
    static func errorType(header: String?, bodyType: String?) -> String? {
        guard let raw = header ?? bodyType, !raw.isEmpty else { return nil }
        var name = Substring(raw)
        if let colon = name.firstIndex(of: ":") { name = name[..<colon] }
        if let hash = name.lastIndex(of: "#") { name = name[name.index(after: hash)...] }
        return String(name)
    }
}
