import Foundation

/// An email as found in the maildrop.
public struct ReceivedEmail: Sendable {
    public var to: String
    public var subject: String
    public var body: String
    /// The token in the email's link, if it has one.
    public var token: String? {
        guard let range = body.range(of: #"token=[A-Za-z0-9_-]{43}"#, options: .regularExpression) else { return nil }
        return String(body[range].dropFirst("token=".count))
    }
}

/// The emails in a maildrop directory (identity's `--maildrop-dir`, the simulator's offer emails),
/// as tests read them.
public struct MaildropReader: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Every email in the maildrop to `address`, oldest first.
    public func emails(to address: String) -> [ReceivedEmail] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".eml") }.compactMap { name -> (Date, ReceivedEmail)? in
            let path = directory + "/" + name
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let modified = try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date,
                let email = Self.parse(text), email.to == address
            else { return nil }
            return (modified, email)
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Waits until `count` emails to `address` have arrived; returns them. The default wait is
    /// long because the test command's services pass runs many suites at once on 2 cores.
    @discardableResult
    public func waitForEmails(to address: String, count: Int = 1, timeout: Duration = .seconds(30)) async throws -> [ReceivedEmail] {
        try await eventually(timeout: timeout) { emails(to: address).count >= count }
        let found = emails(to: address)
        guard found.count >= count else { throw ProcessFailure("expected \(count) emails to \(address), found \(found.count)") }
        return found
    }

    /// The token in the link of the first email to `address`, once it has arrived.
    public func linkToken(to address: String) async throws -> String {
        guard let token = try await waitForEmails(to: address)[0].token else { throw ProcessFailure("the email to \(address) has no link token") }
        return token
    }

    static func parse(_ text: String) -> ReceivedEmail? {
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        var headers: [String: String] = [:]
        for line in text[..<split.lowerBound].components(separatedBy: "\r\n") {
            if let colon = line.firstIndex(of: ":") {
                headers[String(line[..<colon]).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        guard let to = headers["to"], let subject = headers["subject"] else { return nil }
        return ReceivedEmail(to: to, subject: subject, body: String(text[split.upperBound...]).replacingOccurrences(of: "\r\n", with: "\n"))
    }
}
