import Foundation
import GRDB

/// The buyer's side: offers, IAM identities and subscribing.
extension SimulatorStore {
    struct Offer: Sendable {
        var id: String
        var productCode: String
        var productName: String
        var buyerAccountID: String
        var committedAmountUSD: Int
        var termMonths: Int
        var dimensions: [String: Int]
        var expiresAt: Date
    }

    struct BuyerIdentity: Sendable {
        var name: String
        var accountID: String
        var email: String
        var managedPolicies: Set<String>
        var actions: Set<String>

        var canViewAndAccept: Bool {
            BuyerPermissions.canViewAndAccept(managedPolicies: managedPolicies, actions: actions)
        }
    }

    func offer(id: String) async throws -> Offer? {
        try await database.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT o.*, p.name AS product_name FROM offer o JOIN product p ON p.code = o.product_code WHERE o.id = ?
                        """, arguments: [id])
            else { return nil }
            return Offer(
                id: row["id"], productCode: row["product_code"], productName: row["product_name"],
                buyerAccountID: row["buyer_account_id"], committedAmountUSD: row["committed_amount_usd"],
                termMonths: row["term_months"],
                dimensions: try JSONDecoder().decode([String: Int].self, from: Data((row["dimensions"] as String).utf8)),
                expiresAt: row["expires_at"])
        }
    }

    func identity(name: String) async throws -> BuyerIdentity? {
        try await database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM buyer_identity WHERE name = ?", arguments: [name]) else { return nil }
            let decoder = JSONDecoder()
            return BuyerIdentity(
                name: row["name"], accountID: row["account_id"], email: row["email"],
                managedPolicies: Set(try decoder.decode([String].self, from: Data((row["managed_policies"] as String).utf8))),
                actions: Set(try decoder.decode([String].self, from: Data((row["actions"] as String).utf8))))
        }
    }

    /// The IAM identities of an AWS account, for the sign-in page.
    func identityNames(accountID: String) async throws -> [String] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM buyer_identity WHERE account_id = ? ORDER BY name", arguments: [accountID])
        }
    }

    enum SubscribeOutcome: Sendable {
        case subscribed(Subscription)
        /// Subscribing again to the same offer shows the existing subscription.
        case alreadySubscribed(Subscription)
        case otherOfferActive
        case offerExpired
        case notYourOffer
    }

    /// Subscribes the identity's account to the offer; one committed-contract offer per account.
    func subscribe(offer: Offer, identity: BuyerIdentity) async throws -> SubscribeOutcome {
        guard offer.buyerAccountID == identity.accountID else { return .notYourOffer }
        guard offer.expiresAt > Date() else { return .offerExpired }
        return try await database.write { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT * FROM subscription WHERE account_id = ? AND product_code = ?",
                arguments: [identity.accountID, offer.productCode])
            {
                let existing = Subscription(row: row)
                return existing.offerID == offer.id ? .alreadySubscribed(existing) : .otherOfferActive
            }
            let customer = "cust-" + String(SimulatorStore.randomToken().prefix(13))
            let start = Date()
            let end = Calendar(identifier: .gregorian).date(byAdding: .month, value: offer.termMonths, to: start) ?? start
            let license = "arn:aws:license-manager::\(identity.accountID):license:l-\(SimulatorStore.randomToken().prefix(16).lowercased())"
            try db.execute(
                sql: """
                    INSERT INTO subscription (customer_identifier, offer_id, account_id, product_code, state, license_arn, starts_at, ends_at)
                    VALUES (?, ?, ?, ?, 'active', ?, ?, ?)
                    """,
                arguments: [customer, offer.id, identity.accountID, offer.productCode, license, start, end])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM subscription WHERE customer_identifier = ?", arguments: [customer])!
            return .subscribed(Subscription(row: row))
        }
    }
}
