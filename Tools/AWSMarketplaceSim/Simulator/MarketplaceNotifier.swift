import AsyncHTTPClient
import Foundation
import GRDB
import Logging
import NIOCore
import ServiceLifecycle
import ServiceRuntime
import Synchronization

/// Publishes subscription lifecycle events to the seller as Amazon SNS would: a signed
/// SubscriptionConfirmation first, then Notifications once the seller has fetched the SubscribeURL,
/// each kept in the outbox and retried with backoff until the seller answers 2xx. It also writes
/// the offer invitation emails to the maildrop.
final class MarketplaceNotifier: Service, Sendable {
    private let store: SimulatorStore
    private let signer: SNSSigner
    private let notificationURL: String?
    private let maildropDirectory: String?
    private let logger: Logger
    /// The simulator's own base URL, known once the server listens (the port may be chosen then).
    private let baseURL = Mutex<String?>(nil)

    init(store: SimulatorStore, signer: SNSSigner, notificationURL: String?, maildropDirectory: String?, logger: Logger) {
        self.store = store
        self.signer = signer
        self.notificationURL = notificationURL
        self.maildropDirectory = maildropDirectory
        self.logger = logger
    }

    func serverIsListening(baseURL url: String) {
        baseURL.withLock { $0 = url }
    }

    static func topicArn(productCode: String) -> String {
        "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-\(productCode)"
    }

    /// Queues a Notification with the marketplace `action` for a subscription.
    func publish(action: String, subscription: SimulatorStore.Subscription) async throws {
        let message = try JSONSerialization.data(withJSONObject: [
            "action": action, "customer-identifier": subscription.customerIdentifier,
            "product-code": subscription.productCode, "offer-identifier": subscription.offerID,
        ], options: [.sortedKeys])
        let base = await waitForBaseURL()
        let topic = Self.topicArn(productCode: subscription.productCode)
        let signed = try signer.sign([
            "Type": "Notification", "MessageId": UUID().uuidString.lowercased(), "TopicArn": topic,
            "Message": String(decoding: message, as: UTF8.self), "Timestamp": Date().formatted(Self.timestamp),
            "SigningCertURL": "\(base)/SimpleNotificationService-simulator.pem",
            "UnsubscribeURL": "\(base)/sns/unsubscribe?topic=\(topic)",
        ])
        try await store.enqueue(type: "Notification", signedBody: try Self.json(signed))
    }

    // MARK: Service

    /// Runs until shutdown: a service that returned would stop the whole simulator.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            let base = await self.waitForBaseURL()
            var emailsWritten = false
            var confirmationQueued = self.notificationURL == nil
            while !Task.isCancelled {
                // A failure is logged and tried again; it never stops the simulator.
                do {
                    if !emailsWritten {
                        try await self.writeOfferEmails(base: base)
                        emailsWritten = true
                    }
                    if !confirmationQueued {
                        try await self.queueConfirmationIfNeeded(base: base)
                        confirmationQueued = true
                    }
                    if try await self.deliverNext() { continue }
                } catch {
                    // Cancellation is how a graceful shutdown ends the loop, not a failure.
                    if Task.isCancelled { break }
                    self.logger.error("notifier step failed; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func waitForBaseURL() async -> String {
        while true {
            if let url = baseURL.withLock({ $0 }) { return url }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private func queueConfirmationIfNeeded(base: String) async throws {
        let codes = try await store.database.read { db in try String.fetchAll(db, sql: "SELECT code FROM product") }
        for code in codes {
            let topic = Self.topicArn(productCode: code)
            let (token, isNew) = try await store.topicToken(arn: topic)
            guard isNew else { continue }
            let signed = try signer.sign([
                "Type": "SubscriptionConfirmation", "MessageId": UUID().uuidString.lowercased(), "Token": token,
                "TopicArn": topic, "Timestamp": Date().formatted(Self.timestamp),
                "Message": "You have chosen to subscribe to the topic \(topic).\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                "SubscribeURL": "\(base)/sns/confirm?Action=ConfirmSubscription&TopicArn=\(topic)&Token=\(token)",
                "SigningCertURL": "\(base)/SimpleNotificationService-simulator.pem",
            ])
            try await store.enqueue(type: "SubscriptionConfirmation", signedBody: try Self.json(signed))
        }
    }

    /// Tries the oldest undelivered message; returns whether there was one ready to try.
    private func deliverNext() async throws -> Bool {
        guard let notificationURL, let message = try await store.oldestUndelivered(), message.nextAttemptAt <= Date() else {
            return false
        }
        if message.type == "Notification" {
            let topic = (try? JSONSerialization.jsonObject(with: Data(message.body.utf8)) as? [String: String])?["TopicArn"] ?? ""
            guard try await store.isTopicConfirmed(arn: topic) else { return false }
        }
        var request = HTTPClientRequest(url: notificationURL)
        request.method = .POST
        request.headers.add(name: "content-type", value: "text/plain; charset=UTF-8")
        request.headers.add(name: "x-amz-sns-message-type", value: message.type)
        request.body = .bytes(ByteBuffer(string: message.body))
        var status = 0
        do {
            status = Int(try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status.code)
        } catch {
            logger.info("notification not delivered", metadata: ["seq": "\(message.seq)", "error": "\(error)"])
        }
        if (200..<300).contains(status) {
            try await store.markDelivered(seq: message.seq)
        } else {
            let delay = min(30.0, 0.2 * pow(2.0, Double(message.attempts)))
            logger.info("notification refused; retrying", metadata: ["seq": "\(message.seq)", "status": "\(status)", "in_seconds": "\(delay)"])
            try await store.postpone(seq: message.seq, until: Date().addingTimeInterval(delay))
        }
        return true
    }

    // MARK: Offer emails

    /// One `offer-<id>.eml` per offer in the maildrop, with the "Review offer" link; marked sent
    /// only once the file is in place, so a crash before means writing it again.
    private func writeOfferEmails(base: String) async throws {
        guard let maildropDirectory else { return }
        let maildrop = Maildrop(directory: maildropDirectory, domain: "aws-marketplace-sim")
        for (offer, email) in try await store.offersWithoutEmail() {
            try maildrop.deliver(EmailMessage(
                from: "AWS Marketplace <no-reply@marketplace.aws.example>", to: "<\(email)>",
                subject: "Private offer: \(offer.productName)",
                body: """
                    You have received a private offer for \(offer.productName):
                    committed amount USD \(offer.committedAmountUSD) over \(offer.termMonths) months.

                    Review offer: \(base)/buyer/offers/\(offer.id)
                    """), name: "offer-\(offer.id)")
            try await store.markEmailWritten(offerID: offer.id)
        }
    }

    // MARK: Helpers

    private static let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    private static func json(_ message: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]), as: UTF8.self)
    }
}
