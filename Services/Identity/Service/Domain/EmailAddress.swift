import Foundation

/// An email address as identity stores it: trimmed, domain lowercased, checked. The local part
/// keeps the case the person typed, for display; `key` compares addresses.
struct EmailAddress: Equatable, Sendable, CustomStringConvertible {
    let local: String
    let domain: String

    var description: String { "\(local)@\(domain)" }

    /// What makes two addresses the same mailbox for us: the whole address lowercased. RFC 5321
    /// lets a server treat `Ann@` and `ann@` as two mailboxes, but no real provider does, and
    /// treating them as two accounts would give one person several (and several emails).
    var key: String { description.lowercased() }

    /// Longest address SMTP can carry (RFC 5321 section 4.5.3.1 with the path's brackets).
    static let maxLength = 254

    init(_ text: String) throws(IdentityError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .invalid(field: "email", reason: "is required") }
        guard trimmed.utf8.count <= Self.maxLength else {
            throw .invalid(field: "email", reason: "is longer than \(Self.maxLength) characters")
        }
        guard let at = trimmed.lastIndex(of: "@") else {
            throw .invalid(field: "email", reason: "must look like name@example.com")
        }
        let local = String(trimmed[..<at])
        let domain = trimmed[trimmed.index(after: at)...].lowercased()
        guard (1...64).contains(local.utf8.count), local.utf8.allSatisfy(Self.isLocalPartByte),
            !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..")
        else {
            throw .invalid(field: "email", reason: "has a name part (before @) that is empty, too long or holds characters that are not allowed")
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2,
            labels.allSatisfy({ label in
                (1...63).contains(label.utf8.count) && label.utf8.allSatisfy(Self.isDomainByte)
                    && label.first != "-" && label.last != "-"
            })
        else {
            throw .invalid(field: "email", reason: "has a domain (after @) that is not valid, e.g. example.com")
        }
        self.local = local
        self.domain = domain
    }

    /// Printable ASCII allowed unquoted in a local part (RFC 5322 atext, plus dots).
    private static func isLocalPartByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            Array("!#$%&'*+-/=?^_`{|}~.".utf8).contains(byte)
        }
    }

    private static func isDomainByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"): true
        default: false
        }
    }
}
