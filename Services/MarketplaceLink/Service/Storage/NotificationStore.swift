import AWSMarketplace
import Foundation
import GRDB

/// The Amazon SNS messages marketplace-link has taken, read and written inside the caller's
/// transaction. The MessageId primary key is what makes a redelivered message a no-op.
enum NotificationStore {
    /// What became of a message.
    enum State: String, Sendable {
        case applied = "APPLIED"
        /// No registration for its customer yet; applied when the registration comes.
        case waiting = "WAITING"
        /// entitlement-updated: the entitlements are still to be fetched from AWS.
        case refresh = "REFRESH"
        case ignored = "IGNORED"
    }

    struct Waiting: Sendable {
        var messageID: String
        var action: MarketplaceSubscriptionEvent.Action
    }

    struct Refresh: Sendable {
        var messageID: String
        var customerIdentifier: String
        var productCode: String
        var attempts: Int
    }

    /// Records a message; false if its MessageId was already taken (a duplicate: nothing happens).
    /// A message to act on later (REFRESH) gets that state through `setState`.
    static func insert(
        _ db: Database, _ message: SNSMessage, event: MarketplaceSubscriptionEvent?, state: State, detail: String?,
        at: Date
    ) throws -> Bool {
        try db.execute(
            sql: """
                INSERT INTO sns_message (message_id, type, topic_arn, sent_at, received_at, action, customer_identifier, product_code,
                                         offer_identifier, state, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(message_id) DO NOTHING
                """,
            arguments: [
                message.messageID, message.kind.rawValue, message.topicArn, message.timestamp.timeIntervalSince1970,
                at.timeIntervalSince1970, event?.action.rawValue, event?.customerIdentifier, event?.productCode,
                event?.offerIdentifier, state.rawValue, detail
            ])
        return db.changesCount == 1
    }

    static func isRecorded(_ db: Database, messageID: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM sns_message WHERE message_id = ?", arguments: [messageID]) ?? false
    }

    static func setState(_ db: Database, messageID: String, _ state: State, detail: String?, at: Date) throws {
        try db.execute(
            sql: "UPDATE sns_message SET state = ?, detail = ?, next_attempt_at = ?, lease_until = NULL WHERE message_id = ?",
            arguments: [state.rawValue, detail, state == .refresh ? at.timeIntervalSince1970 : nil, messageID])
    }

    /// A customer's messages that arrived before their registration, oldest first (by SNS's Timestamp).
    static func waiting(_ db: Database, customerIdentifier: String, productCode: String) throws -> [Waiting] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT message_id, action FROM sns_message
                WHERE state = 'WAITING' AND customer_identifier = ? AND product_code = ? ORDER BY sent_at, received_at
                """, arguments: [customerIdentifier, productCode]
        ).compactMap { row in
            MarketplaceSubscriptionEvent.Action(rawValue: row["action"]).map { Waiting(messageID: row["message_id"], action: $0) }
        }
    }

    /// Refreshes due at `at` and not leased, leased until `until`.
    static func leaseDueRefreshes(_ db: Database, at: Date, until: Date) throws -> [Refresh] {
        let due = try Row.fetchAll(
            db,
            sql: """
                SELECT message_id, customer_identifier, product_code, attempts FROM sns_message
                WHERE state = 'REFRESH' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
                ORDER BY next_attempt_at LIMIT 50
                """, arguments: [at.timeIntervalSince1970]
        )
        for row in due {
            try db.execute(
                sql: "UPDATE sns_message SET lease_until = ? WHERE message_id = ?", arguments: [until.timeIntervalSince1970, row["message_id"]])
        }
        return due.map { row in
            Refresh(
                messageID: row["message_id"], customerIdentifier: row["customer_identifier"], productCode: row["product_code"],
                attempts: row["attempts"])
        }
    }

    static func postponeRefresh(_ db: Database, messageID: String, until: Date, error: String) throws {
        try db.execute(
            sql: "UPDATE sns_message SET attempts = attempts + 1, next_attempt_at = ?, detail = ?, lease_until = NULL WHERE message_id = ?",
            arguments: [until.timeIntervalSince1970, "retrying: \(error)", messageID])
    }

    static func recordSubscription(_ db: Database, topicArn: String, at: Date) throws {
        try db.execute(
            sql:
                "INSERT INTO sns_subscription (topic_arn, confirmed_at) VALUES (?, ?) ON CONFLICT DO UPDATE SET confirmed_at = excluded.confirmed_at",
            arguments: [topicArn, at.timeIntervalSince1970])
    }
}
