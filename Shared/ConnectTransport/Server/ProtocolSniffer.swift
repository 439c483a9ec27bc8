import Logging
import NGHTTP2
import NIOCore
import NIOHTTP1
import NIOSSL

/// Tells HTTP/2 (prior knowledge, or after ALPN `h2`) from HTTP/1.1 by the first bytes of the
/// connection, then replaces itself with the handler for that protocol.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let endpoint: ConnectEndpoint
    private let settings: ServerConnectionSettings
    private let logger: Logger
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?

    init(endpoint: ConnectEndpoint, settings: ServerConnectionSettings, logger: Logger) {
        self.endpoint = endpoint
        self.settings = settings
        self.logger = logger
    }

    /// A peer that has not said which protocol it speaks within the request timeout is dropped
    /// (a trickled preface must not hold a connection forever).
    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: settings.requestTimeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        let compared = min(bytes.count, http2ClientPreface.count)
        let matches = bytes.prefix(compared).elementsEqual(http2ClientPreface.prefix(compared))
        if matches && compared < http2ClientPreface.count { return }  // wait for the rest of the preface
        do {
            try switchProtocol(toHTTP2: matches, context: context)
        } catch {
            logger.warning("cannot set up the connection", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func switchProtocol(toHTTP2: Bool, context: ChannelHandlerContext) throws {
        let connection = ConnectionInfo(
            peerAddress: context.channel.remoteAddress?.ipAddress,
            tlsClientIdentity: try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                .peerCertificate.flatMap(ClientCertificateIdentity.commonName))
        let operations = context.pipeline.syncOperations
        if toHTTP2 {
            try operations.addHandler(
                HTTP2ServerHandler(endpoint: endpoint, settings: settings, connection: connection, logger: logger),
                position: .after(self))
        } else {
            try operations.addHandlers(
                [
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                    HTTPResponseEncoder(),
                    HTTPServerPipelineHandler(),
                    HTTPServerProtocolErrorHandler(),
                    HTTP1ServerHandler(endpoint: endpoint, settings: settings, connection: connection)
                ],
                position: .after(self))
        }
        let bytes = buffered.take()!
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        operations.removeHandler(context: context, promise: nil)
    }
}
