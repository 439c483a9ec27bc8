import ServiceRuntime

/// Where outgoing email goes: a mail server over SMTP, or a maildrop directory for local runs.
protocol EmailTransport: Sendable {
    func send(_ message: EmailMessage) async throws
}

/// Why a send failed, and whether trying again can help.
struct EmailDeliveryError: Error, CustomStringConvertible {
    /// The server refused for good (an SMTP 5xx reply): retrying will not help.
    var permanent: Bool
    var description: String
}

/// Delivers into a maildrop directory. A message's file is named by its id, so sending it twice
/// leaves one file.
struct MaildropTransport: EmailTransport {
    let maildrop: Maildrop

    func send(_ message: EmailMessage) async throws {
        try maildrop.deliver(message)
    }
}
