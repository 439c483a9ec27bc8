import Foundation
import GRDB
import ServiceRuntime
import Testing

/// Rows read as declared properties, from a real SQLite file: the column names, the times and the
/// JSON columns every service stores.
@Suite struct DatabaseRecordTests {
    struct Terms: Codable, Equatable {
        var dimensions: [String: String]
        var endsAt: Date?
    }

    struct Stored: DatabaseRecord, Equatable {
        var id: String
        var awsAccountID: String
        var createdAt: Date
        var usedAt: Date?
        var terms: Terms
    }

    @Test func columnsTimesAndJSONReadAsDeclared() throws {
        let path = NSTemporaryDirectory() + "record-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let database = try DatabaseQueue(path: path)
        let terms = Terms(dimensions: ["committed_spend_usd": "100000"], endsAt: Date(timeIntervalSince1970: 1_800_000_000))
        let json = String(decoding: try JSONEncoder().encode(terms), as: UTF8.self)
        try database.write { db in
            try db.execute(sql: "CREATE TABLE stored (id TEXT, aws_account_id TEXT, created_at REAL, used_at REAL, terms TEXT)")
            try db.execute(sql: "INSERT INTO stored VALUES ('a', '123456789012', 1700000000.25, NULL, ?)", arguments: [json])
            try db.execute(sql: "INSERT INTO stored VALUES ('b', '210987654321', 1700000001, 1700000002.5, ?)", arguments: [json])
        }
        let rows = try database.read { db in try Stored.fetchAll(db, sql: "SELECT * FROM stored ORDER BY id") }
        #expect(
            rows == [
                Stored(
                    id: "a", awsAccountID: "123456789012", createdAt: Date(timeIntervalSince1970: 1_700_000_000.25), usedAt: nil,
                    terms: terms),
                Stored(
                    id: "b", awsAccountID: "210987654321", createdAt: Date(timeIntervalSince1970: 1_700_000_001),
                    usedAt: Date(timeIntervalSince1970: 1_700_000_002.5), terms: terms)
            ])
        // A property the row has no column for fails loudly rather than reading as a default.
        #expect(throws: (any Error).self) {
            try database.read { db in try Stored.fetchAll(db, sql: "SELECT id, aws_account_id AS account, created_at, terms FROM stored") }
        }
    }
}
