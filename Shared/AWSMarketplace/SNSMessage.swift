import Foundation

/// An Amazon SNS message as SNS POSTs it to an HTTP endpoint: a JSON object whose values are all
/// strings. Parsing checks its shape only; `SNSReceiver` checks that SNS really sent it.
public struct SNSMessage: Sendable {
    public enum Kind: String, Sendable {
        case notification = "Notification"
        case subscriptionConfirmation = "SubscriptionConfirmation"
        case unsubscribeConfirmation = "UnsubscribeConfirmation"
    }

    /// Every field as received.
    public let fields: [String: String]
    public let kind: Kind
    public let messageID: String
    public let topicArn: String
    /// The payload: for AWS Marketplace, a JSON object (`MarketplaceSubscriptionEvent`).
    public let message: String
    /// When SNS published it.
    public let timestamp: Date

    /// The largest body accepted: SNS messages carry at most 256 KiB of payload.
    public static let maxBytes = 320 * 1024

    /// Parses a request body; `typeHeader` is the `x-amz-sns-message-type` header, which must agree
    /// with the body when present.
    public init(body: [UInt8], typeHeader: String? = nil) throws(SNSMessageError) {
        guard body.count <= Self.maxBytes else { throw .malformed("the body exceeds \(Self.maxBytes) bytes") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw .malformed("the body is not a JSON object")
        }
        var fields: [String: String] = [:]
        for (key, value) in object {
            guard let text = value as? String else { throw .malformed("field \(key) is not a string") }
            fields[key] = text
        }
        guard let typeName = fields["Type"], let kind = Kind(rawValue: typeName) else {
            throw .malformed("Type must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation")
        }
        if let typeHeader, typeHeader != typeName {
            throw .malformed("x-amz-sns-message-type says \(typeHeader) but the body says \(typeName)")
        }
        let required =
            ["MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"]
            + (kind == .notification ? [] : ["SubscribeURL", "Token"])
        if let missing = required.first(where: { fields[$0] == nil }) { throw .malformed("field \(missing) is missing") }
        guard let timestamp = Self.parseTimestamp(fields["Timestamp"]!) else {
            throw .malformed("Timestamp is not an ISO 8601 time")
        }
        self.fields = fields
        self.kind = kind
        self.messageID = fields["MessageId"]!
        self.topicArn = fields["TopicArn"]!
        self.message = fields["Message"]!
        self.timestamp = timestamp
    }

    public var signatureVersion: String { fields["SignatureVersion"] ?? "" }
    public var signature: String { fields["Signature"] ?? "" }
    public var signingCertURL: String { fields["SigningCertURL"] ?? "" }
    public var subscribeURL: String? { fields["SubscribeURL"] }

    /// What SNS signs: `Key\nValue\n` for the keys of the message's type, in SNS's order; `Subject`
    /// only when present.
    public static func stringToSign(_ fields: [String: String]) -> String {
        let keys =
            fields["Type"] == Kind.notification.rawValue
            ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
            : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        return keys.compactMap { key in fields[key].map { "\(key)\n\($0)\n" } }.joined()
    }

    /// SNS writes `2026-11-28T06:44:04.123Z`; fractional seconds are optional.
    static func parseTimestamp(_ text: String) -> Date? {
        (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
            ?? (try? Date(text, strategy: Date.ISO8601FormatStyle()))
    }
}

/// The `Message` of an AWS Marketplace SaaS subscription notification.
public struct MarketplaceSubscriptionEvent: Sendable, Equatable, Decodable {
    /// The SNS topic AWS Marketplace publishes a product's subscription events on.
    public static func topicArn(productCode: String) -> String {
        "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-\(productCode)"
    }

    public enum Action: String, Sendable, Decodable {
        case subscribeSuccess = "subscribe-success"
        case subscribeFail = "subscribe-fail"
        case unsubscribePending = "unsubscribe-pending"
        case unsubscribeSuccess = "unsubscribe-success"
        case entitlementUpdated = "entitlement-updated"
    }

    public var action: Action
    public var customerIdentifier: String
    public var productCode: String
    public var offerIdentifier: String?

    enum CodingKeys: String, CodingKey {
        case action
        case customerIdentifier = "customer-identifier"
        case productCode = "product-code"
        case offerIdentifier = "offer-identifier"
    }

    public init(message: String) throws(SNSMessageError) {
        do {
            self = try JSONDecoder().decode(Self.self, from: Data(message.utf8))
        } catch {
            throw .malformed("the Message is not an AWS Marketplace subscription event (action, customer-identifier, product-code)")
        }
        guard (1...256).contains(customerIdentifier.utf8.count), (1...256).contains(productCode.utf8.count) else {
            throw .malformed("customer-identifier and product-code must be 1 to 256 characters")
        }
    }
}

/// Why an SNS message was not taken.
public enum SNSMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not an SNS message at all (HTTP 400).
    case malformed(String)
    /// Not provably from SNS, or not for us (HTTP 403).
    case untrusted(String)
    /// SNS's certificate or confirmation URL could not be reached; the sender should retry (HTTP 503).
    case unavailable(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "not an Amazon SNS message: \(reason)"
        case .untrusted(let reason): "refused: \(reason)"
        case .unavailable(let reason): "try again later: \(reason)"
        }
    }

    /// `malformed`, `untrusted` or `unavailable`: a label for counters (a fixed set).
    public var kindName: String {
        switch self {
        case .malformed: "malformed"
        case .untrusted: "untrusted"
        case .unavailable: "unavailable"
        }
    }

    public var httpStatus: Int {
        switch self {
        case .malformed: 400
        case .untrusted: 403
        case .unavailable: 503
        }
    }
}
