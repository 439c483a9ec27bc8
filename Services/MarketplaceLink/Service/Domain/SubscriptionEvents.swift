import AWSMarketplace
import Foundation
import Logging
import ServiceRuntime

/// AWS Marketplace's subscription events, as Amazon SNS delivers them: verified, recorded by
/// MessageId (a redelivery changes nothing) and applied in the same transaction. An event for a
/// customer who has not registered yet waits for the registration; entitlement-updated is
/// recorded first and its entitlements fetched from AWS afterwards, retried until AWS answers.
final class SubscriptionEvents: Sendable {
    enum Receipt: Equatable {
        case accepted
        case duplicate
    }

    private let productCode: String
    private let storage: any LinkStorage
    private let receiver: SNSReceiver
    private let entitlements: MarketplaceEntitlementClient
    private let saga: BindingSaga
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// Wakes the entitlement refresher when an entitlement-updated is recorded.
    private let wake = WakeSignal()
    private let longestRetryDelay: TimeInterval = 60
    /// How long a replica owns a refresh it took (the fetch from AWS takes far less).
    static let refreshLease: TimeInterval = 60

    init(
        productCode: String, storage: any LinkStorage, receiver: SNSReceiver, entitlements: MarketplaceEntitlementClient,
        saga: BindingSaga, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.productCode = productCode
        self.storage = storage
        self.receiver = receiver
        self.entitlements = entitlements
        self.saga = saga
        self.now = now
        self.logger = logger
    }

    /// Takes one SNS message; throws why not (the sender retries on `unavailable`).
    func receive(_ message: SNSMessage) async throws(SNSMessageError) -> Receipt {
        try await receiver.verify(message)
        switch message.kind {
        case .subscriptionConfirmation:
            if try await isKnown(message.messageID) { return .duplicate }
            try await receiver.confirmSubscription(message)
            let at = now()
            _ = try await write { storage in
                try await storage.recordMessage(message, state: .applied, detail: "subscription confirmed", confirmedTopic: true, at: at)
            }
            logger.info("SNS subscription confirmed", metadata: ["topic": "\(message.topicArn)"])
            return .accepted
        case .unsubscribeConfirmation:
            let at = now()
            let isNew = try await write { storage in
                try await storage.recordMessage(
                    message, state: .ignored, detail: "our endpoint was unsubscribed from the topic", confirmedTopic: false, at: at)
            }
            if isNew {
                logger.warning(
                    "SNS says this endpoint was unsubscribed; subscribe it again to receive subscription events",
                    metadata: ["topic": "\(message.topicArn)"])
            }
            return isNew ? .accepted : .duplicate
        case .notification:
            let event: MarketplaceSubscriptionEvent
            do throws(SNSMessageError) {
                event = try MarketplaceSubscriptionEvent(message: message.message)
            } catch {
                // Signed by SNS on our topic, yet not an event we know: kept for an operator to look
                // at, and taken, since SNS would otherwise send it again and again.
                let at = now()
                let isNew = try await write { storage in
                    try await storage.recordMessage(message, state: .ignored, detail: "\(error)", confirmedTopic: false, at: at)
                }
                logger.error(
                    "SNS notification without a subscription event; kept as IGNORED",
                    metadata: ["message_id": "\(message.messageID)", "reason": "\(error)"])
                return isNew ? .accepted : .duplicate
            }
            return try await receive(event: event, of: message)
        }
    }

    private func receive(event: MarketplaceSubscriptionEvent, of message: SNSMessage) async throws(SNSMessageError) -> Receipt {
        let at = now()
        let productCode = self.productCode
        let effect = try await write { storage in try await storage.applyEvent(event, of: message, productCode: productCode, at: at) }
        guard let effect else { return .duplicate }
        logger.info(
            "subscription event",
            metadata: [
                "message_id": "\(message.messageID)", "action": "\(event.action.rawValue)", "state": "\(effect.state.rawValue)",
                "detail": "\(effect.detail ?? "")"
            ])
        saga.linksChanged()
        if effect.state == .refresh { wake.signal() }
        return .accepted
    }

    // MARK: Entitlement refresh

    /// The refreshes as background work: the entitlements of every recorded entitlement-updated
    /// that is due; woken when one is recorded.
    func runner() -> DurableWorkRunner {
        DurableWorkRunner(
            name: "entitlement refresh", wake: wake, batchSize: 50, idleWait: .seconds(1),
            due: { [storage, now] in try await storage.leaseDueRefreshes(at: now(), until: now() + Self.refreshLease) },
            perform: { [self] refresh in await self.refresh(refresh) },
            now: now, logger: logger)
    }

    private func refresh(_ refresh: NotificationStore.Refresh) async {
        do {
            let current = try await entitlements.entitlements(
                productCode: refresh.productCode,
                filter: [.customerIdentifier: [refresh.customerIdentifier]])
            try await storage.completeRefresh(refresh, entitlements: current, at: now())
            saga.linksChanged()
            logger.info("entitlements refreshed", metadata: ["message_id": "\(refresh.messageID)"])
        } catch {
            let delay = RetryBackoff.delay(afterAttempts: refresh.attempts, cap: longestRetryDelay)
            logger.info("entitlement refresh failed; retrying", metadata: ["message_id": "\(refresh.messageID)", "error": "\(error)"])
            try? await storage.postponeRefresh(messageID: refresh.messageID, until: now() + delay, error: "\(error)")
        }
    }

    // MARK: Storage

    private func isKnown(_ messageID: String) async throws(SNSMessageError) -> Bool {
        do {
            return try await storage.isMessageRecorded(messageID: messageID)
        } catch {
            throw .unavailable("cannot read the message log")
        }
    }

    /// A write whose failure the sender should retry.
    private func write<T: Sendable>(_ body: (any LinkStorage) async throws -> T) async throws(SNSMessageError) -> T {
        do {
            return try await body(storage)
        } catch {
            logger.error("cannot record an SNS message", metadata: ["error": "\(error)"])
            throw .unavailable("cannot record the message")
        }
    }
}
