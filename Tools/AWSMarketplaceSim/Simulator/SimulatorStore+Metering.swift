import Foundation
import GRDB

/// The usage AWS accepted from BatchMeterUsage: one record per (customer, dimension, hour), kept
/// so tests can compare exact totals.
extension SimulatorStore {
    static func registerMeteringMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3 metering: cancellation time, who each record named") { db in
            try db.execute(
                sql: """
                    ALTER TABLE subscription ADD COLUMN cancelled_at DATETIME;
                    ALTER TABLE metering_record ADD COLUMN product_code TEXT;
                    ALTER TABLE metering_record ADD COLUMN aws_account_id TEXT;
                    ALTER TABLE metering_record ADD COLUMN license_arn TEXT;
                    ALTER TABLE metering_record ADD COLUMN received_at DATETIME;
                    """)
        }
    }

    /// The subscription a record names by AWS account (and license, when given) for a product.
    func subscription(awsAccountID: String, licenseArn: String?, productCode: String?) async throws -> Subscription? {
        try await database.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT * FROM subscription WHERE account_id = ?1 AND (?2 IS NULL OR license_arn = ?2) AND (?3 IS NULL OR product_code = ?3)
                    ORDER BY starts_at DESC LIMIT 1
                    """, arguments: [awsAccountID, licenseArn, productCode]
            ).map(Subscription.init(row:))
        }
    }

    /// Every dimension a product's offers name: the dimensions usage may be metered in.
    func dimensions(productCode: String) async throws -> Set<String> {
        try await database.read { db in
            let texts = try String.fetchAll(db, sql: "SELECT dimensions FROM offer WHERE product_code = ?", arguments: [productCode])
            return Set(try texts.flatMap { try JSONDecoder().decode([String: Int].self, from: Data($0.utf8)).keys })
        }
    }

    /// What recording a usage record came to.
    enum Metered: Equatable {
        /// Recorded now, or the identical record had been (AWS's deduplication): its id.
        case recorded(id: String)
        /// The same customer, dimension and hour was recorded with another quantity: not billed.
        case duplicate
    }

    /// One record for `subscription`, its hour starting at `hour`.
    func recordUsage(
        _ subscription: Subscription, awsAccountID: String?, licenseArn: String?, dimension: String, hour: Int, quantity: Int
    ) async throws -> Metered {
        try await database.write { db in
            if let existing = try Row.fetchOne(
                db, sql: "SELECT id, quantity FROM metering_record WHERE customer_identifier = ? AND dimension = ? AND timestamp = ?",
                arguments: [subscription.customerIdentifier, dimension, hour])
            {
                return existing["quantity"] == quantity ? .recorded(id: existing["id"]) : .duplicate
            }
            let id = UUID().uuidString.lowercased()
            try db.execute(
                sql: """
                    INSERT INTO metering_record (id, customer_identifier, dimension, timestamp, quantity, product_code, aws_account_id, license_arn, received_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, subscription.customerIdentifier, dimension, hour, quantity, subscription.productCode, awsAccountID, licenseArn, Date()
                ])
            return .recorded(id: id)
        }
    }

    /// Every record accepted, oldest hour first, as a JSON array (the test endpoint `GET /_sim/metering-records`).
    func meteringRecordsJSON() async throws -> Data {
        try await database.read { db in
            let records = try Row.fetchAll(db, sql: "SELECT * FROM metering_record ORDER BY timestamp, customer_identifier, dimension").map { row in
                [
                    "id": row["id"] as String, "customerIdentifier": row["customer_identifier"] as String,
                    "dimension": row["dimension"] as String, "timestamp": row["timestamp"] as Int, "quantity": row["quantity"] as Int,
                    "awsAccountId": (row["aws_account_id"] as String?) ?? NSNull(), "licenseArn": (row["license_arn"] as String?) ?? NSNull()
                ] as [String: Any]
            }
            return try JSONSerialization.data(withJSONObject: records, options: [.sortedKeys])
        }
    }
}
