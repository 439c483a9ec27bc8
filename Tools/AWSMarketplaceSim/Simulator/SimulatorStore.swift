import Crypto
import Foundation
import GRDB

/// The simulator's state in its own SQLite database: what AWS would hold for one seller.
struct SimulatorStore: Sendable {
    let database: DatabasePool

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 marketplace") { db in
            try db.create(table: "seller_key") { table in
                table.primaryKey("access_key_id", .text)
                table.column("secret_access_key", .text).notNull()
            }
            try db.create(table: "product") { table in
                table.primaryKey("code", .text)
                table.column("name", .text).notNull()
            }
            try db.create(table: "offer") { table in
                table.primaryKey("id", .text)
                table.column("product_code", .text).notNull().references("product")
                table.column("buyer_account_id", .text).notNull()
                table.column("committed_amount_usd", .integer).notNull()
                table.column("term_months", .integer).notNull()
                table.column("dimensions", .text).notNull()  // JSON object: dimension -> quantity
                table.column("expires_at", .datetime).notNull()
            }
            try db.create(table: "buyer_identity") { table in
                table.primaryKey("name", .text)
                table.column("account_id", .text).notNull()
                table.column("email", .text).notNull()
                table.column("managed_policies", .text).notNull()  // JSON array
                table.column("actions", .text).notNull()  // JSON array
            }
            try db.create(table: "subscription") { table in
                table.primaryKey("customer_identifier", .text)
                table.column("offer_id", .text).notNull().references("offer")
                table.column("account_id", .text).notNull()
                table.column("product_code", .text).notNull()
                table.column("state", .text).notNull()  // active, unsubscribe-pending, cancelled
                table.column("license_arn", .text).notNull()
                table.column("starts_at", .datetime).notNull()
                table.column("ends_at", .datetime).notNull()
                // One committed-contract private offer per AWS account and product.
                table.uniqueKey(["account_id", "product_code"])
            }
            try db.create(table: "registration_token") { table in
                table.primaryKey("token_hash", .text)
                table.column("customer_identifier", .text).notNull().references("subscription")
                table.column("expires_at", .datetime).notNull()
            }
            try db.create(table: "metering_record") { table in
                table.primaryKey("id", .text)
                table.column("customer_identifier", .text).notNull()
                table.column("dimension", .text).notNull()
                table.column("timestamp", .integer).notNull()
                table.column("quantity", .integer).notNull()
                table.uniqueKey(["customer_identifier", "dimension", "timestamp"])
            }
        }
        registerNotificationMigrations(&migrator)
        registerMeteringMigrations(&migrator)
        return migrator
    }

    /// Writes the seed; running it again changes nothing already there.
    func apply(_ seed: SimulatorSeed) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try database.write { db in
            for key in seed.sellerKeys {
                try db.execute(sql: "INSERT OR IGNORE INTO seller_key VALUES (?, ?)", arguments: [key.accessKeyId, key.secretAccessKey])
            }
            try db.execute(sql: "INSERT OR IGNORE INTO product VALUES (?, ?)", arguments: [seed.product.code, seed.product.name])
            for offer in seed.offers {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO offer VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [
                        offer.id, seed.product.code, offer.buyerAccountId, offer.committedAmountUSD, offer.termMonths,
                        String(decoding: try encoder.encode(offer.dimensions), as: UTF8.self), offer.expiresAt
                    ])
            }
            for buyer in seed.buyers {
                for identity in buyer.identities {
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO buyer_identity VALUES (?, ?, ?, ?, ?)",
                        arguments: [
                            identity.name, buyer.accountId, buyer.email,
                            String(decoding: try encoder.encode(identity.managedPolicies), as: UTF8.self),
                            String(decoding: try encoder.encode(identity.actions), as: UTF8.self)
                        ])
                }
            }
        }
    }

    // MARK: Seller keys

    func secret(forAccessKey accessKey: String) async throws -> String? {
        try await database.read { db in
            try String.fetchOne(db, sql: "SELECT secret_access_key FROM seller_key WHERE access_key_id = ?", arguments: [accessKey])
        }
    }

    // MARK: Registration tokens

    /// A new registration token for a subscription, valid for `lifetime`; only its hash is kept.
    func issueRegistrationToken(customerIdentifier: String, lifetime: TimeInterval = 4 * 3600) async throws -> String {
        let token = Self.randomToken()
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO registration_token VALUES (?, ?, ?)",
                arguments: [Self.hash(token), customerIdentifier, Date().addingTimeInterval(lifetime)])
        }
        return token
    }

    enum TokenLookup {
        case customer(Subscription)
        case expired
        case unknown
    }

    func resolve(registrationToken token: String) async throws -> TokenLookup {
        try await database.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT s.*, t.expires_at AS token_expires_at FROM registration_token t
                        JOIN subscription s ON s.customer_identifier = t.customer_identifier WHERE t.token_hash = ?
                        """, arguments: [Self.hash(token)])
            else { return .unknown }
            let expires: Date = row["token_expires_at"]
            return expires < Date() ? .expired : .customer(Subscription(row: row))
        }
    }

    // MARK: Subscriptions

    struct Subscription: Sendable {
        var customerIdentifier: String
        var offerID: String
        var accountID: String
        var productCode: String
        var state: String
        var licenseArn: String
        var startsAt: Date
        var endsAt: Date
        /// When the buyer cancelled: usage from before it is still taken for one metering hour.
        var cancelledAt: Date?

        init(row: Row) {
            customerIdentifier = row["customer_identifier"]
            offerID = row["offer_id"]
            accountID = row["account_id"]
            productCode = row["product_code"]
            state = row["state"]
            licenseArn = row["license_arn"]
            startsAt = row["starts_at"]
            endsAt = row["ends_at"]
            cancelledAt = row["cancelled_at"]
        }
    }

    func subscription(customerIdentifier: String) async throws -> Subscription? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM subscription WHERE customer_identifier = ?", arguments: [customerIdentifier])
                .map(Subscription.init(row:))
        }
    }

    /// Every subscription's entitlements: one per dimension of its offer, valid until the contract ends.
    func entitlements() async throws -> [(subscription: Subscription, dimension: String, quantity: Int)] {
        try await database.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT s.*, o.dimensions FROM subscription s JOIN offer o ON o.id = s.offer_id
                    WHERE s.state != 'cancelled' ORDER BY s.customer_identifier
                    """)
            return try rows.flatMap { row -> [(Subscription, String, Int)] in
                let dimensions = try JSONDecoder().decode([String: Int].self, from: Data((row["dimensions"] as String).utf8))
                let subscription = Subscription(row: row)
                return dimensions.sorted { $0.key < $1.key }.map { (subscription, $0.key, $0.value) }
            }
        }
    }

    // MARK: Helpers

    static func randomToken() -> String {
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
