import Foundation

/// An email as this system writes it: plain text, UTF-8.
public struct EmailMessage: Sendable, Equatable {
    public var from: String
    public var to: String
    public var subject: String
    public var body: String
    /// Unique per message; also names its file in a maildrop.
    public var id: String

    public init(from: String, to: String, subject: String, body: String, id: String = UUID().uuidString.lowercased()) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.id = id
    }

    /// The message in RFC 5322 form with CRLF line ends: what a maildrop file or SMTP DATA holds.
    public func rfc5322(date: Date = Date(), domain: String) -> String {
        let header = [
            "From: \(from)",
            "To: \(to)",
            "Subject: \(subject)",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: <\(id)@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit"
        ]
        let lines = body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        return (header + [""] + lines.map(String.init)).joined(separator: "\r\n") + "\r\n"
    }

    /// `Sat, 28 Nov 2026 03:00:00 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }
}

/// A directory of `.eml` files, one per message: the local stand-in for a mail server. A file
/// appears whole or not at all (written under a temporary name, then renamed).
public struct Maildrop: Sendable {
    public let directory: String
    /// The domain in Message-ID headers.
    public let domain: String

    public init(directory: String, domain: String) {
        self.directory = directory
        self.domain = domain
    }

    /// Writes `message` as `<name>.eml` (its id unless a name is given), replacing a file of that name.
    @discardableResult
    public func deliver(_ message: EmailMessage, name: String? = nil) throws -> String {
        try PrivateFiles.makeDirectory(directory)
        let path = (directory as NSString).appendingPathComponent("\(name ?? message.id).eml")
        let temporary = path + ".tmp"
        // 0600 from creation: the message may hold a link token.
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(message.rfc5322(domain: domain).utf8),
                attributes: [.posixPermissions: 0o600])
        else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        guard rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return path
    }
}
