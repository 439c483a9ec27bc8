import AWSMarketplace
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
final class MarketplaceNotifier: Sendable {
    private let store: SimulatorStore
    private let signer: SNSSigner
    private let notificationURL: String?
    private let maildropDirectory: String?
    /// The base of the offer emails' links, when people reach the simulator elsewhere than services do.
    private let publicURL: String?
    private let logger: Logger
    /// The simulator's own base URL, known once the server listens (the port may be chosen then).
    private let baseURL = Mutex<(url: String?, waiters: [CheckedContinuation<String?, Never>])>((nil, []))
    /// Whether the offer emails are written and the subscription confirmations queued.
    private let prepared = Mutex((emails: false, confirmations: false))
    /// Signalled when a message is queued or a topic confirmed.
    let wake = WakeSignal()

    init(
        store: SimulatorStore, signer: SNSSigner, notificationURL: String?, maildropDirectory: String?, publicURL: String?,
        logger: Logger
    ) {
        self.publicURL = publicURL
        self.store = store
        self.signer = signer
        self.notificationURL = notificationURL
        self.maildropDirectory = maildropDirectory
        self.logger = logger
    }

    func serverIsListening(baseURL url: String) {
        let waiting = baseURL.withLock { state in
            defer { state = (url, []) }
            return state.waiters
        }
        for waiter in waiting { waiter.resume(returning: url) }
    }

    /// Queues a Notification with the marketplace `action` for a subscription.
    func publish(action: MarketplaceSubscriptionEvent.Action, subscription: SimulatorStore.Subscription) async throws {
        let message = try JSONSerialization.data(
            withJSONObject: [
                "action": action.rawValue, "customer-identifier": subscription.customerIdentifier,
                "product-code": subscription.productCode, "offer-identifier": subscription.offerID
            ], options: [.sortedKeys])
        let base = try await waitForBaseURL()
        let topic = MarketplaceSubscriptionEvent.topicArn(productCode: subscription.productCode)
        let signed = try signer.sign([
            "Type": "Notification", "MessageId": UUID().uuidString.lowercased(), "TopicArn": topic,
            "Message": String(decoding: message, as: UTF8.self), "Timestamp": Date().formatted(Self.timestamp),
            "SigningCertURL": "\(base)/SimpleNotificationService-simulator.pem",
            "UnsubscribeURL": "\(base)/sns/unsubscribe?topic=\(topic)"
        ])
        try await store.enqueue(type: "Notification", signedBody: try Self.json(signed))
        wake.signal()
    }

    // MARK: Delivery

    /// The outbox as background work, run by the simulator's service group until shutdown: the
    /// offer emails and confirmations first, then each message once it may be sent, oldest first.
    func runner() -> DurableWorkRunner {
        DurableWorkRunner(
            name: "sns notifications", wake: wake, batchSize: 1, idleWait: .seconds(1),
            due: { [self] in
                try await prepareOnce()
                return try await readyMessage().map { [$0] } ?? []
            },
            perform: { [self] message in await deliver(message) },
            nextDue: { [store] in
                // A retry not yet due; a message waiting for its topic's confirmation waits for `wake`.
                guard let next = try await store.oldestUndelivered()?.nextAttemptAt, next > Date() else { return nil }
                return next
            },
            logger: logger)
    }

    private func prepareOnce() async throws {
        let base = try await waitForBaseURL()
        if !prepared.withLock({ $0.emails }) {
            try await writeOfferEmails(base: base)
            prepared.withLock { $0.emails = true }
        }
        if !prepared.withLock({ $0.confirmations }) {
            if notificationURL != nil { try await queueConfirmationIfNeeded(base: base) }
            prepared.withLock { $0.confirmations = true }
        }
    }

    /// The base URL once the server listens; throws if the task is cancelled before (a server
    /// that never started: shutdown must not wait for it).
    private func waitForBaseURL() async throws -> String {
        let url = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
                let known = baseURL.withLock { state -> String? in
                    if state.url == nil { state.waiters.append(continuation) }
                    return state.url
                }
                if let known { continuation.resume(returning: known) }
            }
        } onCancel: {
            let waiting = baseURL.withLock { state in
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiting { waiter.resume(returning: nil) }
        }
        guard let url else { throw CancellationError() }
        return url
    }

    private func queueConfirmationIfNeeded(base: String) async throws {
        let codes = try await store.database.read { db in try String.fetchAll(db, sql: "SELECT code FROM product") }
        for code in codes {
            let topic = MarketplaceSubscriptionEvent.topicArn(productCode: code)
            let (token, isNew) = try await store.topicToken(arn: topic)
            guard isNew else { continue }
            let signed = try signer.sign([
                "Type": "SubscriptionConfirmation", "MessageId": UUID().uuidString.lowercased(), "Token": token,
                "TopicArn": topic, "Timestamp": Date().formatted(Self.timestamp),
                "Message":
                    "You have chosen to subscribe to the topic \(topic).\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                "SubscribeURL": "\(base)/sns/confirm?Action=ConfirmSubscription&TopicArn=\(topic)&Token=\(token)",
                "SigningCertURL": "\(base)/SimpleNotificationService-simulator.pem"
            ])
            try await store.enqueue(type: "SubscriptionConfirmation", signedBody: try Self.json(signed))
        }
    }

    /// The oldest undelivered message, if it may be sent now (a Notification only once its
    /// topic's subscription is confirmed).
    private func readyMessage() async throws -> SimulatorStore.PendingMessage? {
        guard notificationURL != nil, let message = try await store.oldestUndelivered(), message.nextAttemptAt <= Date() else {
            return nil
        }
        if message.type == "Notification" {
            let topic = (try? JSONSerialization.jsonObject(with: Data(message.body.utf8)) as? [String: String])?["TopicArn"] ?? ""
            guard try await store.isTopicConfirmed(arn: topic) else { return nil }
        }
        return message
    }

    /// POSTs one message; a 2xx marks it delivered, anything else retries it later.
    private func deliver(_ message: SimulatorStore.PendingMessage) async {
        guard let notificationURL else { return }
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
        do {
            if (200..<300).contains(status) {
                try await store.markDelivered(seq: message.seq)
            } else {
                let delay = min(30.0, 0.2 * pow(2.0, Double(message.attempts)))
                logger.info("notification refused; retrying", metadata: ["seq": "\(message.seq)", "status": "\(status)", "in_seconds": "\(delay)"])
                try await store.postpone(seq: message.seq, until: Date().addingTimeInterval(delay))
            }
        } catch {
            logger.error("cannot record a delivery", metadata: ["seq": "\(message.seq)", "error": "\(error)"])
        }
    }

    // MARK: Offer emails

    /// One `offer-<id>.eml` per offer in the maildrop, with the "Review offer" link; marked sent
    /// only once the file is in place, so a crash before means writing it again.
    private func writeOfferEmails(base: String) async throws {
        guard let maildropDirectory else { return }
        let maildrop = Maildrop(directory: maildropDirectory, domain: "aws-marketplace-sim")
        for (offer, email) in try await store.offersWithoutEmail() {
            try maildrop.deliver(
                EmailMessage(
                    from: "AWS Marketplace <no-reply@marketplace.aws.example>", to: "<\(email)>",
                    subject: "Private offer: \(offer.productName)",
                    body: """
                        You have received a private offer for \(offer.productName):
                        committed amount USD \(offer.committedAmountUSD) over \(offer.termMonths) months.

                        Review offer: \(publicURL ?? base)/buyer/offers/\(offer.id)
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
