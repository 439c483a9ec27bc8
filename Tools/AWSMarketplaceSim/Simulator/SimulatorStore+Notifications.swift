import Foundation
import GRDB

/// SNS messages to the seller's endpoint, kept in an outbox and delivered in order until accepted.
extension SimulatorStore {
    static func registerNotificationMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2 notifications") { db in
            try db.create(table: "sns_topic") { table in
                table.primaryKey("arn", .text)
                table.column("confirm_token", .text).notNull()
                table.column("confirmed_at", .datetime)
            }
            try db.create(table: "sns_message") { table in
                table.autoIncrementedPrimaryKey("seq")
                table.column("type", .text).notNull()
                table.column("body", .text).notNull()  // the signed JSON document
                table.column("attempts", .integer).notNull().defaults(to: 0)
                table.column("next_attempt_at", .datetime).notNull()
                table.column("delivered_at", .datetime)
            }
            try db.create(table: "offer_email") { table in
                table.primaryKey("offer_id", .text)
                table.column("written_at", .datetime).notNull()
            }
        }
    }

    /// The topic's confirmation token, creating the topic (and so a confirmation to send) once.
    func topicToken(arn: String) async throws -> (token: String, isNew: Bool) {
        try await database.write { db in
            if let token = try String.fetchOne(db, sql: "SELECT confirm_token FROM sns_topic WHERE arn = ?", arguments: [arn]) {
                return (token, false)
            }
            let token = SimulatorStore.randomToken()
            try db.execute(sql: "INSERT INTO sns_topic (arn, confirm_token) VALUES (?, ?)", arguments: [arn, token])
            return (token, true)
        }
    }

    /// Marks the topic confirmed when `token` is its confirmation token.
    func confirmTopic(token: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE sns_topic SET confirmed_at = ? WHERE confirm_token = ? AND confirmed_at IS NULL",
                arguments: [Date(), token])
            return try Bool.fetchOne(db, sql: "SELECT confirmed_at IS NOT NULL FROM sns_topic WHERE confirm_token = ?", arguments: [token]) ?? false
        }
    }

    func isTopicConfirmed(arn: String) async throws -> Bool {
        try await database.read { db in
            try Bool.fetchOne(db, sql: "SELECT confirmed_at IS NOT NULL FROM sns_topic WHERE arn = ?", arguments: [arn]) ?? false
        }
    }

    func enqueue(type: String, signedBody: String) async throws {
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO sns_message (type, body, next_attempt_at) VALUES (?, ?, ?)",
                arguments: [type, signedBody, Date()])
        }
    }

    struct PendingMessage: Sendable {
        var seq: Int64
        var type: String
        var body: String
        var attempts: Int
        var nextAttemptAt: Date
    }

    /// The oldest undelivered message: delivery keeps the order in which events happened.
    func oldestUndelivered() async throws -> PendingMessage? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sns_message WHERE delivered_at IS NULL ORDER BY seq LIMIT 1").map { row in
                PendingMessage(
                    seq: row["seq"], type: row["type"], body: row["body"], attempts: row["attempts"],
                    nextAttemptAt: row["next_attempt_at"])
            }
        }
    }

    func markDelivered(seq: Int64) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE sns_message SET delivered_at = ? WHERE seq = ?", arguments: [Date(), seq])
        }
    }

    func postpone(seq: Int64, until: Date) async throws {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE sns_message SET attempts = attempts + 1, next_attempt_at = ? WHERE seq = ?",
                arguments: [until, seq])
        }
    }

    // MARK: Lifecycle changes

    /// The buyer cancelled: the subscription ends now.
    func cancel(customerIdentifier: String) async throws -> Subscription? {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE subscription SET state = 'cancelled', cancelled_at = ? WHERE customer_identifier = ? AND state != 'cancelled'",
                arguments: [Date(), customerIdentifier])
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchOne(db, sql: "SELECT * FROM subscription WHERE customer_identifier = ?", arguments: [customerIdentifier])
                .map(Subscription.init(row:))
        }
    }

    /// The seller amended an offer's dimensions; returns the subscriptions it changes.
    func amend(offerID: String, dimensions: [String: Int]) async throws -> [Subscription]? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(dimensions), as: UTF8.self)
        return try await database.write { db in
            try db.execute(sql: "UPDATE offer SET dimensions = ? WHERE id = ?", arguments: [text, offerID])
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchAll(db, sql: "SELECT * FROM subscription WHERE offer_id = ? AND state != 'cancelled'", arguments: [offerID])
                .map(Subscription.init(row:))
        }
    }

    /// Offers whose invitation email has not been written yet, with the buyer's address.
    func offersWithoutEmail() async throws -> [(offer: Offer, email: String)] {
        let ids = try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT o.id, (SELECT email FROM buyer_identity b WHERE b.account_id = o.buyer_account_id LIMIT 1) AS email
                    FROM offer o WHERE o.id NOT IN (SELECT offer_id FROM offer_email) ORDER BY o.id
                    """
            ).compactMap { row in (row["email"] as String?).map { (row["id"] as String, $0) } }
        }
        var result: [(Offer, String)] = []
        for (id, email) in ids {
            if let offer = try await offer(id: id) { result.append((offer, email)) }
        }
        return result
    }

    /// Called once the email file is in place, so a crash before it means writing it again.
    func markEmailWritten(offerID: String) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO offer_email VALUES (?, ?)", arguments: [offerID, Date()])
        }
    }
}
