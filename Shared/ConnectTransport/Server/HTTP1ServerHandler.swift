import Logging
import NIOCore
import NIOHTTP1

/// Serves one HTTP/1.1 connection (probes, plain curl, Connect over HTTP/1.1) through the same
/// `ConnectEndpoint` as HTTP/2. NIO's pipelining handler hands it one request at a time.
final class HTTP1ServerHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoint: ConnectEndpoint
    private let connection: ConnectionInfo
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var bodyTooLarge = false
    private var busy = false
    private var draining = false
    private var task: Task<Void, Never>?

    init(endpoint: ConnectEndpoint, connection: ConnectionInfo) {
        self.endpoint = endpoint
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard !bodyTooLarge else { return }
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > endpoint.maxBodyBytes {
                refuseBody(context: context)
            }
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if body.readableBytes + chunk.readableBytes > endpoint.maxBodyBytes {
                refuseBody(context: context)
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard !bodyTooLarge, let head else { return }
            self.head = nil
            busy = true
            let headers = head.headers.map { (name: $0.name.lowercased(), value: $0.value) }
            let request = HTTPRequest(method: head.method.rawValue, target: head.uri, headers: headers, body: body,
                                      peerAddress: connection.peerAddress, tlsClientIdentity: connection.tlsClientIdentity)
            let keepAlive = head.isKeepAlive
            let endpoint = self.endpoint
            let this = NIOLoopBound(self, eventLoop: context.eventLoop)
            let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            task = Task.immediate(executorPreference: EventLoopTaskExecutor(eventLoop: loop)) {
                let response = await endpoint.handle(request)
                loop.execute {
                    this.value.task = nil
                    this.value.write(response, keepAlive: keepAlive, context: boundContext.value)
                }
            }
        }
    }

    /// Answers a request whose body passes the limit at once, without reading the rest, and closes
    /// the connection once the answer is out (the unread body makes it unusable).
    private func refuseBody(context: ChannelHandlerContext) {
        bodyTooLarge = true
        head = nil
        body = ByteBuffer()
        busy = true
        write(endpoint.bodyTooLargeResponse(), keepAlive: false, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerDrainEvent {
            draining = true
            if !busy { context.close(promise: nil) }
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all, !busy {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// A malformed request (NIO has already answered 400) or a socket error: the connection is done.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        busy = false
        let keepOpen = keepAlive && !draining && !bodyTooLarge
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        headers.replaceOrAdd(name: "content-length", value: String(response.body.readableBytes))
        if !keepOpen { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        if keepOpen {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
