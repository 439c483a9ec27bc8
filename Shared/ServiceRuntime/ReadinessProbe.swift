import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// The `healthcheck` subcommand's work: asks a service on this machine for `GET /readyz` over
/// HTTP/1.1 (TLS when the service has it) and says whether it answered 200. Container images have
/// no curl, so each executable checks itself.
public enum ReadinessProbe {
    /// The `healthcheck` subcommand's help.
    public static let abstract = "Exit 0 if the service configured like this one answers GET /readyz with 200, else 1 (for container health checks)."

    /// The status code of `GET /readyz` at `host:port` (a wildcard address means this machine),
    /// or nil when nothing answered within `timeout`.
    public static func status(host: String, port: Int, tls: Bool, timeout: Duration = .seconds(3)) async -> Int? {
        let target = ["0.0.0.0", "::", ""].contains(host) ? "127.0.0.1" : host
        let answer = Answer()
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if tls {
                            // Its own certificate may not name the loopback address; this checks readiness, not identity.
                            var configuration = TLSConfiguration.makeClientConfiguration()
                            configuration.certificateVerification = .none
                            let context = try NIOSSLContext(configuration: configuration)
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                        }
                        try channel.pipeline.syncOperations.addHandler(StatusLineReader(answer: answer))
                    }
                }
                .connect(host: target, port: port).get()
            let request = "GET /readyz HTTP/1.1\r\nHost: \(target):\(port)\r\nConnection: close\r\n\r\n"
            try await channel.writeAndFlush(ByteBuffer(string: request)).get()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await channel.closeFuture.get() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    try? await channel.close()
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            return answer.status
        }
        return answer.status
    }

    /// Exits 0 when the service answers 200, else 1 with a line on standard error.
    public static func exit(host: String, port: Int, tls: Bool) async -> Never {
        let status = await status(host: host, port: port, tls: tls)
        guard status == 200 else {
            FileHandle.standardError.write(
                Data("not ready: GET /readyz on port \(port) \(status.map { "answered \($0)" } ?? "got no answer")\n".utf8))
            Foundation.exit(1)
        }
        Foundation.exit(0)
    }

    /// Exits as `exit(host:port:tls:)` does, for a service configured with `settings`.
    public static func exit(settings: ServiceSettings) async -> Never {
        await exit(host: settings.host, port: settings.port, tls: settings.tls != nil)
    }

    private final class Answer: @unchecked Sendable {
        // Written on the channel's event loop, read after the channel closed.
        var status: Int?
    }

    /// Reads the status line, `HTTP/1.1 200 OK`, and closes.
    private final class StatusLineReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let answer: Answer
        var received = ByteBuffer()

        init(answer: Answer) { self.answer = answer }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.writeBuffer(&bytes)
            guard let line = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                if received.readableBytes > 1024 { context.close(promise: nil) }
                return
            }
            let statusLine = String(decoding: received.readableBytesView[..<line], as: UTF8.self)
            let parts = statusLine.split(separator: " ")
            if parts.count >= 2, parts[0].hasPrefix("HTTP/1.") { answer.status = Int(parts[1]) }
            context.close(promise: nil)
        }
    }
}
