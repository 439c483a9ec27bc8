import Foundation
import GRDB

/// A row read as a `Decodable` value, the way every service stores its columns: snake_case names
/// read as Swift names (`created_at` is `createdAt`, `organization_id` is `organizationID`), times
/// as seconds since 1970 (REAL), and JSON text columns decoded with a plain `JSONDecoder` (as they
/// were encoded). Declaring the properties is the whole mapping.
public protocol DatabaseRecord: FetchableRecord, Decodable {}

extension DatabaseRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy {
        .custom { column in ColumnKey(stringValue: ColumnKey.swiftName(of: column)) }
    }
    public static var databaseDateDecodingStrategy: DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    public static func databaseJSONDecoder(for column: String) -> JSONDecoder { JSONDecoder() }
}

/// A column's name as the property it fills.
struct ColumnKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }

    /// `aws_account_id` is `awsAccountID`: words after the first capitalised, `id` as `ID`.
    static func swiftName(of column: String) -> String {
        let words = column.split(separator: "_")
        guard let first = words.first else { return column }
        return words.dropFirst().reduce(into: String(first)) { name, word in
            name += word == "id" ? "ID" : word.prefix(1).uppercased() + word.dropFirst()
        }
    }
}
