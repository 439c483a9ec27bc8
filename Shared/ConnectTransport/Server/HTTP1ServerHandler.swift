import Logging
import NIOCore
import NIOHTTP1

/// Serves one HTTP/1.1 connection (probes, plain curl, Connect over HTTP/1.1) through the same
/// `ConnectEndpoint` as HTTP/2. NIO's pipelining handler hands it one request at a time.
///
/// Bounded like HTTP/2: an answer the socket cannot take waits here (and the pipelining handler
/// then holds the next request back), reading stops meanwhile, a body draws on the process's
/// body budget as it arrives, and the same time limits apply.
final class HTTP1ServerHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The one request in progress, as `ConnectionDeadlines` counts it.
    private static let requestID: Int32 = 1

    private let endpoint: ConnectEndpoint
    private let settings: ServerConnectionSettings
    private let connection: ConnectionInfo
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// Bytes of `body` covered by the process's body budget.
    private var drawn = 0
    private var bodyTooLarge = false
    private var busy = false
    private var draining = false
    private var task: Task<Void, Never>?
    private var deadlines: ConnectionDeadlines
    private var ticker: RepeatedTask?
    /// An answer waiting for the socket to take more.
    private var pending: (response: HTTPResponse, keepAlive: Bool)?
    private var waitingForBudget = false

    init(endpoint: ConnectEndpoint, settings: ServerConnectionSettings, connection: ConnectionInfo) {
        self.endpoint = endpoint
        self.settings = settings
        self.connection = connection
        deadlines = settings.deadlines(now: .now())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: settings.tickInterval, delay: settings.tickInterval) { _ in
            this.value.tick(context: bound.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker?.cancel()
        ticker = nil
        releaseBody()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard !bodyTooLarge else { return }
            deadlines.requestBegan(Self.requestID, at: .now())
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
                drawBudget(context: context)
            }
        case .end:
            guard !bodyTooLarge, let head else { return }
            self.head = nil
            busy = true
            deadlines.requestArrived(Self.requestID)
            let headers = head.headers.map { (name: $0.name.lowercased(), value: $0.value) }
            let request = HTTPRequest(
                method: head.method.rawValue, target: head.uri, headers: headers, body: body,
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
        releaseBody()
        busy = true
        write(endpoint.bodyTooLargeResponse(), keepAlive: false, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerDrainEvent {
            draining = true
            if !busy { context.close(promise: nil) }
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

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        deadlines.writabilityChanged(writable: writable, at: .now())
        updateReading(context: context)
        if writable, let (response, keepAlive) = pending.take() {
            write(response, keepAlive: keepAlive, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Limits

    /// Covers the body held so far from the process's budget; stops reading while it cannot.
    private func drawBudget(context: ChannelHandlerContext) {
        drawn += settings.pool.take(upTo: body.readableBytes - drawn)
        let short = drawn < body.readableBytes
        if short != waitingForBudget {
            waitingForBudget = short
            updateReading(context: context)
        }
    }

    private func releaseBody() {
        settings.pool.giveBack(drawn)
        drawn = 0
    }

    private func updateReading(context: ChannelHandlerContext) {
        let read = context.channel.isWritable && !waitingForBudget
        try? context.channel.syncOptions?.setOption(.autoRead, value: read)
    }

    private func tick(context: ChannelHandlerContext) {
        if waitingForBudget { drawBudget(context: context) }
        switch deadlines.tick(at: .now()) {
        case nil:
            break
        case .abandonRequests:
            // The request did not arrive in time: say so, and drop the connection with its unread rest.
            head = nil
            body = ByteBuffer()
            releaseBody()
            bodyTooLarge = true
            busy = true
            write(
                HTTPResponse(
                    status: 408, headers: [("content-type", "text/plain")],
                    body: ByteBuffer(string: "the request did not arrive in time\n")),
                keepAlive: false, context: context)
        case .closeIdle, .closeStalled:
            if !busy || pending != nil { context.close(promise: nil) }
        }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            pending = (response, keepAlive)
            return
        }
        busy = false
        releaseBody()
        deadlines.requestEnded(Self.requestID, at: .now())
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
