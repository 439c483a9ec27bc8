import Foundation
import Testing

/// aws-marketplace-sim as a real process with a test seed: product `prod-ch-committed`, offers
/// `offer-a` and `offer-b` for account 111111111111 (identities alice, with the permissions, and
/// bob, without) and `offer-c` for 222222222222 (carol).
public struct SimulatorProcess: Sendable {
    public static let product = "prod-ch-committed"
    public static let sellerAccessKeyID = "AKIDSIMSELLER"
    public static let sellerSecret = "sim-seller-secret"
    public static let fulfillmentURL = "http://127.0.0.1:7100/marketplace/setup"

    public let process: ChildProcess
    public let directory: String
    public var baseURL: String { "http://127.0.0.1:\(process.port)" }

    public static func seed() throws -> String {
        let future = Date().addingTimeInterval(30 * 86400).formatted(.iso8601)
        let json = """
            {"sellerKeys": [{"accessKeyId": "\(sellerAccessKeyID)", "secretAccessKey": "\(sellerSecret)"}],
             "product": {"code": "\(product)", "name": "ClickHouse Cloud - Committed Contract"},
             "offers": [
               {"id": "offer-a", "buyerAccountId": "111111111111", "committedAmountUSD": 120000, "termMonths": 12,
                "dimensions": {"seats": 10, "storage": 500, "compute": 7}, "expiresAt": "\(future)"},
               {"id": "offer-b", "buyerAccountId": "111111111111", "committedAmountUSD": 50000, "termMonths": 6,
                "dimensions": {"seats": 5}, "expiresAt": "\(future)"},
               {"id": "offer-c", "buyerAccountId": "222222222222", "committedAmountUSD": 10000, "termMonths": 12,
                "dimensions": {"seats": 1}, "expiresAt": "\(future)"}],
             "buyers": [
               {"accountId": "111111111111", "email": "buyer@example.com", "identities": [
                 {"name": "alice", "managedPolicies": ["AWSMarketplaceRead-only", "AWSMarketplaceManageSubscriptions"], "actions": []},
                 {"name": "bob", "managedPolicies": ["AWSMarketplaceRead-only"], "actions": []}]},
               {"accountId": "222222222222", "email": "other@example.com", "identities": [
                 {"name": "carol", "managedPolicies": [], "actions": ["aws-marketplace:ListPrivateListings", "aws-marketplace:ViewSubscriptions"]}]}]}
            """
        return try temporaryFile(Data(json.utf8))
    }

    /// Starts the simulator (`port` 0 picks one); an empty notification URL or maildrop turns that output off.
    /// `meteringHourSeconds` shortens the metering hour; `directory` starts it again on the data
    /// an earlier process left (after `stop()`).
    public static func start(
        port: Int = 0, notificationURL: String = "", maildrop: String = "", seedPath: String? = nil,
        fulfillmentURL: String = fulfillmentURL, meteringHourSeconds: Int = 3600, directory: String? = nil
    ) async throws -> SimulatorProcess {
        let directory = directory ?? NSTemporaryDirectory() + "sim-\(UUID().uuidString)"
        let process = try await ChildProcess(
            service: "aws-marketplace-sim",
            arguments: [
                "--port", "\(port)", "--data-dir", directory, "--seed", try seedPath ?? seed(), "--fulfillment-url", fulfillmentURL,
                "--notification-url", notificationURL, "--maildrop-dir", maildrop, "--metering-hour-seconds", "\(meteringHourSeconds)"
            ])
        return SimulatorProcess(process: process, directory: directory)
    }

    /// The usage records the simulator accepted: (customer identifier, dimension, hour start) and quantity, with the record id.
    public func meteringRecords() async throws -> [(customer: String, dimension: String, hour: Int, quantity: Int, id: String)] {
        let answer = try await Curl.get(baseURL + "/_sim/metering-records")
        let records = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]] ?? []
        return records.map {
            (
                $0["customerIdentifier"] as? String ?? "", $0["dimension"] as? String ?? "", $0["timestamp"] as? Int ?? 0,
                $0["quantity"] as? Int ?? 0, $0["id"] as? String ?? ""
            )
        }
    }

    /// Test switches: throttle the next `count` seller API calls; hand back the next `count`
    /// usage records unprocessed; answer the next `count` BatchMeterUsage calls `seconds` late.
    public func throttle(next count: Int) async throws {
        #expect(try await Curl.post(baseURL + "/_sim/throttle", body: #"{"count":\#(count)}"#).status == 204)
    }

    public func leaveUnprocessed(next count: Int) async throws {
        #expect(try await Curl.post(baseURL + "/_sim/unprocessed", body: #"{"count":\#(count)}"#).status == 204)
    }

    public func delayMetering(next count: Int, seconds: Double) async throws {
        #expect(try await Curl.post(baseURL + "/_sim/delay-metering", body: #"{"count":\#(count),"seconds":\#(seconds)}"#).status == 204)
    }

    public func stop() async { await process.stop() }

    /// Subscribes as `identity` to `offer` and clicks "Set up your account"; returns the token the
    /// auto-submitting form carries to the fulfillment URL.
    public func subscribeAndSetUp(identity: String, offer: String) async throws -> String {
        try await Self.subscribeAndSetUp(baseURL: baseURL, identity: identity, offer: offer)
    }

    /// `subscribeAndSetUp` against the simulator at `baseURL`.
    public static func subscribeAndSetUp(baseURL: String, identity: String, offer: String) async throws -> String {
        let customer = try await subscribe(baseURL: baseURL, identity: identity, offer: offer)
        return try await setUp(baseURL: baseURL, identity: identity, customer: customer)
    }

    /// Subscribes as `identity` to `offer`; returns the subscription's customer identifier.
    public static func subscribe(baseURL: String, identity: String, offer: String) async throws -> String {
        let subscribed = try await Curl.post(
            baseURL + "/buyer/offers/\(offer)/subscribe", body: "as=\(identity)",
            contentType: "application/x-www-form-urlencoded")
        #expect(subscribed.status == 302)
        let location = try #require(subscribed.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("location:") })
        let path = location.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        let page = try await Curl.get(baseURL + path)
        #expect(page.status == 200 && page.body.contains("Set up your account"))
        return String(try #require(path.split(separator: "/").last?.split(separator: "?").first))
    }

    /// Clicks "Set up your account" on a subscription; returns the token the auto-submitting form
    /// carries to the fulfillment URL.
    public static func setUp(baseURL: String, identity: String, customer: String) async throws -> String {
        let setup = try await Curl.post(
            baseURL + "/buyer/subscriptions/\(customer)/setup", body: "as=\(identity)",
            contentType: "application/x-www-form-urlencoded")
        #expect(setup.status == 200)
        #expect(
            setup.body.range(
                of: #"<form id="fulfillment" method="post" action="http://127\.0\.0\.1:\d+/marketplace/setup">"#,
                options: .regularExpression) != nil, "the form posts to the fulfillment URL")
        let marker = #"name="x-amzn-marketplace-token" value=""#
        let start = try #require(setup.body.range(of: marker)).upperBound
        return String(setup.body[start...].prefix { $0 != "\"" })
    }

    /// The buyer cancels the subscription: the simulator publishes unsubscribe-pending, then unsubscribe-success.
    public func cancel(identity: String, customer: String) async throws {
        let cancelled = try await Curl.post(
            baseURL + "/buyer/subscriptions/\(customer)/cancel", body: "as=\(identity)",
            contentType: "application/x-www-form-urlencoded")
        #expect(cancelled.status == 200)
    }

    /// The seller amends an offer's dimensions: the simulator publishes entitlement-updated to its subscribers.
    public func amend(offer: String, dimensions: [String: Int]) async throws {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["dimensions": dimensions]), as: UTF8.self)
        let amended = try await Curl.post(baseURL + "/_sim/offers/\(offer)/amend", body: body)
        #expect(amended.status == 204)
    }

    /// The SNS topic the simulator publishes `product`'s events on (AWS Marketplace's naming).
    public static func topicArn(product: String = product) -> String {
        "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-\(product)"
    }

    /// The simulator's SNS signing key, for tests that sign messages of their own.
    public var snsSigningKeyPath: String { directory + "/sns-signing.key" }
    public var snsCertificateURL: String { baseURL + "/SimpleNotificationService-simulator.pem" }
}
