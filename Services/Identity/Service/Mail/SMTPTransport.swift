import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RPCCore
import ServiceRuntime
import Tracing

/// Where and how to reach the mail server.
struct SMTPSettings: Sendable {
    enum Security: String, Sendable {
        /// Plain text throughout, credentials included (a relay on a trusted network).
        case none
        /// STARTTLS when the server offers it, plain text otherwise (but never AUTH in plain text).
        case opportunistic
        /// STARTTLS or no delivery.
        case required
    }

    var host: String
    var port: Int
    var security: Security
    var username: String?
    var password: String?
    /// PEM CA bundle to trust for STARTTLS instead of the system's (a private relay).
    var trustedCAPath: String?
    /// The name this client gives in EHLO.
    var heloName = "localhost"
    /// Longest one delivery may take, greeting to QUIT.
    var timeout: TimeAmount = .seconds(30)

    /// Parses `smtp://[user[:password]@]host[:port]`; the scheme `smtp+starttls` requires STARTTLS.
    init(url text: String, trustedCAPath: String?) throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme, let host = url.host, !host.isEmpty else {
            throw ConfigurationError("--smtp-url must look like smtp://user:password@host:587, got something else")
        }
        switch scheme {
        case "smtp": security = .opportunistic
        case "smtp+starttls": security = .required
        case "smtp+plain": security = .none
        default: throw ConfigurationError("--smtp-url scheme must be smtp, smtp+starttls or smtp+plain, got \(scheme)")
        }
        self.host = host
        port = url.port ?? 25
        username = url.percentEncodedUser?.removingPercentEncoding
        password = url.percentEncodedPassword?.removingPercentEncoding
        self.trustedCAPath = trustedCAPath
    }
}

/// Sends email over SMTP (RFC 5321) on SwiftNIO: EHLO, STARTTLS (RFC 3207), AUTH PLAIN or LOGIN
/// (RFC 4954), one message per connection.
struct SMTPTransport: EmailTransport {
    let settings: SMTPSettings
    let group: any EventLoopGroup

    /// One delivery as a span of its own (the outbox's "email delivery" holds it): the server and
    /// whether the session was encrypted; never an address, a credential or the message.
    func send(_ message: EmailMessage) async throws {
        try await withSpan("smtp send", ofKind: .client) { span in
            span.attributes["server.address"] = settings.host
            span.attributes["server.port"] = settings.port
            let encrypted = try await converse(message)
            span.attributes["smtp.starttls"] = encrypted
        }
    }

    /// The SMTP conversation; whether it switched to TLS.
    private func converse(_ message: EmailMessage) async throws -> Bool {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SMTPReplyHandler()) }
                }
                .connect(host: settings.host, port: settings.port).get()
        } catch {
            throw EmailDeliveryError(permanent: false, description: "cannot connect to \(settings.host):\(settings.port): \(error)")
        }
        let timeout = channel.eventLoop.scheduleTask(in: settings.timeout) { channel.close(promise: nil) }
        defer {
            timeout.cancel()
            channel.close(promise: nil)
        }
        let session = SMTPSession(channel: channel)
        try await session.expect(nil, 220)
        var extensions = try await session.expect("EHLO \(settings.heloName)", 250).extensions
        var encrypted = false
        if settings.security != .none {
            if extensions.contains("STARTTLS") {
                try await session.expect("STARTTLS", 220)
                try await startTLS(on: channel)
                encrypted = true
                extensions = try await session.expect("EHLO \(settings.heloName)", 250).extensions
            } else if settings.security == .required {
                throw EmailDeliveryError(permanent: false, description: "the mail server does not offer STARTTLS, which is required")
            }
        }
        if let username = settings.username, let password = settings.password {
            // A missing STARTTLS may be an attacker stripping it: credentials never go in clear
            // unless the operator said so with smtp+plain:// (a relay on a trusted network).
            guard encrypted || settings.security == .none else {
                throw EmailDeliveryError(
                    permanent: false,
                    description: """
                        the mail server did not offer STARTTLS, so the credentials were not sent; \
                        use smtp+plain:// only for a relay on a trusted network
                        """)
            }
            let mechanisms = extensions.first { $0.hasPrefix("AUTH ") }?.split(separator: " ").dropFirst().map(String.init) ?? []
            if mechanisms.contains("PLAIN") {
                let credentials = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
                try await session.expect("AUTH PLAIN \(credentials)", 235, secret: true)
            } else if mechanisms.contains("LOGIN") {
                try await session.expect("AUTH LOGIN", 334)
                try await session.expect(Data(username.utf8).base64EncodedString(), 334, secret: true)
                try await session.expect(Data(password.utf8).base64EncodedString(), 235, secret: true)
            } else {
                throw EmailDeliveryError(permanent: true, description: "the mail server offers no AUTH PLAIN or LOGIN (offers: \(mechanisms))")
            }
        }
        try await session.expect("MAIL FROM:<\(Self.address(message.from))>", 250)
        try await session.expect("RCPT TO:<\(Self.address(message.to))>", 250, 251)
        try await session.expect("DATA", 354)
        try await session.expect(Self.dotStuffed(message.rfc5322(domain: settings.heloName)) + ".", 250)
        _ = try? await session.expect("QUIT", 221)
        return encrypted
    }

    private func startTLS(on channel: any Channel) async throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let path = settings.trustedCAPath {
            configuration.trustRoots = .file(path)
        }
        let context = try NIOSSLContext(configuration: configuration)
        let host = settings.host
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: host)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    /// `a@b` from `Name <a@b>` or `a@b`.
    static func address(_ header: String) -> String {
        if let open = header.lastIndex(of: "<"), let close = header.lastIndex(of: ">"), open < close {
            return String(header[header.index(after: open)..<close])
        }
        return header.trimmingCharacters(in: .whitespaces)
    }

    /// DATA content: a line starting with "." gets another (RFC 5321 section 4.5.2).
    static func dotStuffed(_ text: String) -> String {
        text.split(separator: "\r\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }
            .joined(separator: "\r\n")
    }
}

/// One SMTP conversation: send a command, wait for its reply, check the code.
private struct SMTPSession {
    let channel: any Channel

    /// Sends `command` (nil: just read, for the greeting) and fails unless the reply has one of `codes`.
    @discardableResult
    func expect(_ command: String?, _ codes: Int..., secret: Bool = false) async throws -> SMTPReply {
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        let bytes = command.map { ByteBuffer(string: $0 + "\r\n") }
        channel.writeAndFlush(SMTPRequest(command: bytes, reply: promise), promise: nil)
        let reply: SMTPReply
        do {
            reply = try await promise.futureResult.get()
        } catch {
            throw EmailDeliveryError(permanent: false, description: "the mail server connection failed: \(error)")
        }
        guard codes.contains(reply.code) else {
            let shown = secret ? "AUTH" : (command.map { String($0.prefix(40)) } ?? "greeting")
            throw EmailDeliveryError(
                permanent: (500..<600).contains(reply.code),
                description: "the mail server answered \(reply.code) \(reply.lines.joined(separator: " ")) to \(shown)")
        }
        return reply
    }
}

/// A complete (possibly multi-line) SMTP reply.
struct SMTPReply: Sendable {
    var code: Int
    var lines: [String]
    /// EHLO's keywords, e.g. `STARTTLS`, `AUTH PLAIN LOGIN`: every line after the first, uppercased.
    var extensions: [String] { lines.dropFirst().map { $0.uppercased() } }
}

/// A command for the handler: bytes to write (none for the greeting) and where its reply goes.
struct SMTPRequest: Sendable {
    var command: ByteBuffer?
    var reply: EventLoopPromise<SMTPReply>
}

/// Frames replies (`250-...` continues, `250 ...` ends) and hands each to the oldest waiting request.
/// A reply that arrives before its request (the greeting, typically) waits for it.
final class SMTPReplyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = SMTPRequest
    typealias OutboundOut = ByteBuffer

    /// Replies longer than this are refused: a server is not allowed to make us buffer without end.
    private static let maxReplyBytes = 64 * 1024
    private var buffer = ByteBuffer()
    private var lines: [String] = []
    private var waiting: [EventLoopPromise<SMTPReply>] = []
    private var unclaimed: [SMTPReply] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if request.command == nil, !unclaimed.isEmpty {
            request.reply.succeed(unclaimed.removeFirst())
        } else {
            waiting.append(request.reply)
        }
        if let command = request.command {
            context.writeAndFlush(wrapOutboundOut(command), promise: promise)
        } else {
            promise?.succeed()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        guard buffer.readableBytes <= Self.maxReplyBytes else {
            fail(context: context, SMTPProtocolError(description: "the mail server's reply is too long"))
            return
        }
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex + 1
            guard let line = buffer.readString(length: length)?.trimmingCharacters(in: .newlines), line.count >= 3,
                let code = Int(line.prefix(3))
            else {
                fail(context: context, SMTPProtocolError(description: "the mail server sent a line that is not an SMTP reply"))
                return
            }
            let separator = line.dropFirst(3).first
            lines.append(String(line.dropFirst(4)))
            if separator != "-" {
                let reply = SMTPReply(code: code, lines: lines)
                lines = []
                if waiting.isEmpty {
                    guard unclaimed.isEmpty else {
                        fail(context: context, SMTPProtocolError(description: "the mail server sent replies nobody asked for"))
                        return
                    }
                    unclaimed.append(reply)
                } else {
                    waiting.removeFirst().succeed(reply)
                }
            }
        }
        buffer.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        failWaiting(SMTPProtocolError(description: "the mail server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error)
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        failWaiting(error)
        context.close(promise: nil)
    }

    private func failWaiting(_ error: any Error) {
        let pending = waiting
        waiting = []
        for promise in pending { promise.fail(error) }
    }
}

struct SMTPProtocolError: Error, CustomStringConvertible {
    var description: String
}
