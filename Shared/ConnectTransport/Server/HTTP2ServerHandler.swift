import Logging
import NGHTTP2
import NIOCore

/// Serves one HTTP/2 connection: feeds the nghttp2 session, runs each request's handler as a task
/// on this connection's event loop, and writes answers back, one flush per loop tick.
///
/// Memory stays bounded whatever the peer does: while the socket cannot take more, nothing more
/// is read and nothing more is taken from nghttp2 (which paces answers by flow control); request
/// bodies fill a window granted from the process's body budget; requests that do not arrive in
/// time are reset; a peer that stops reading is dropped after the stall timeout.
final class HTTP2ServerHandler: HTTP2SessionDriver {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes taken from nghttp2 per send: small enough that a connection cannot queue much beyond
    /// the channel's high-water mark in one go.
    static let sendChunk = 64 << 10

    private let endpoint: ConnectEndpoint
    private let settings: ServerConnectionSettings
    private let connection: ConnectionInfo
    private let logger: Logger
    private(set) var session: HTTP2Session?
    private(set) var context: ChannelHandlerContext?
    private var executor: EventLoopTaskExecutor?
    /// Streams whose answer is still to be written.
    private var awaiting: Set<Int32> = []
    /// The handler tasks of those streams that suspended (the ones that finished at once have none).
    private var running: [Int32: Task<Void, Never>] = [:]
    var flushScheduled = false
    private var draining = false
    private var deadlines: ConnectionDeadlines
    private var bodyGrant: ConnectionBodyGrant
    private var ticker: RepeatedTask?

    init(endpoint: ConnectEndpoint, settings: ServerConnectionSettings, connection: ConnectionInfo, logger: Logger) {
        self.endpoint = endpoint
        self.settings = settings
        self.connection = connection
        self.logger = logger
        deadlines = settings.deadlines(now: .now())
        bodyGrant = ConnectionBodyGrant(perConnection: settings.bodyBudget.perConnection)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        do {
            let session = try HTTP2Session(role: .server, limits: settings.http2)
            self.session = session
            if let window = bodyGrant.topUp(from: settings.pool) { session.setConnectionWindow(window) }
            sendOutput()
        } catch {
            logger.error("cannot start an HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: settings.tickInterval, delay: settings.tickInterval) { _ in
            this.value.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelAll()
        ticker?.cancel()
        ticker = nil
        bodyGrant.returnAll(to: settings.pool)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        do {
            handle(try session.receive(unwrapInboundIn(data)))
        } catch {
            // A protocol violation: nghttp2 has queued a GOAWAY; send it and close.
            logger.debug("closing HTTP/2 connection", metadata: ["reason": "\(error)", "peer": "\(connection.peerAddress ?? "?")"])
            sendOutput()
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sendOutput()
    }

    /// Reading follows writability: a peer that does not take our answers is not heard further.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        deadlines.writabilityChanged(writable: writable, at: .now())
        try? context.channel.syncOptions?.setOption(.autoRead, value: writable)
        if writable { sendOutput() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelAll()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerDrainEvent {
            draining = true
            session?.submitGoAway()
            sendOutput()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("HTTP/2 connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Events

    func handle(_ events: [HTTP2Event]) {
        let now = NIODeadline.now()
        for event in events {
            switch event {
            case .requestBegun(let streamID):
                deadlines.requestBegan(streamID, at: now)
            case .message(let streamID, let message):
                deadlines.requestArrived(streamID)
                start(streamID: streamID, message: message)
            case .bodyTooLarge(let streamID):
                // Answered at once; the rest of the body is dropped as it comes, and must still
                // come within the request's time limit.
                respond(streamID: streamID, endpoint.bodyTooLargeResponse())
            case .streamClosed(let streamID, _):
                // Answered, or the peer reset the stream or went away mid-call: nobody waits any more.
                deadlines.requestEnded(streamID, at: now)
                awaiting.remove(streamID)
                running.removeValue(forKey: streamID)?.cancel()
            case .goAway:
                break
            }
        }
        if let session { releaseBodies(session) }
    }

    /// Hands released body bytes back to the peer as window, and draws more from the process's
    /// pool when this connection has less than its share.
    private func releaseBodies(_ session: HTTP2Session) {
        session.releaseBodyBytes()
        if let window = bodyGrant.topUp(from: settings.pool) { session.setConnectionWindow(window) }
    }

    private func start(streamID: Int32, message: HTTP2Message) {
        guard let context, let executor else { return }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(message.fields.count)
        for field in message.fields where !field.name.hasPrefix(":") {
            headers.append((field.name, field.value))
        }
        let request = HTTPRequest(
            method: message[":method"] ?? "", target: message[":path"] ?? "/", headers: headers,
            body: message.body, peerAddress: connection.peerAddress,
            tlsClientIdentity: connection.tlsClientIdentity)
        let endpoint = self.endpoint
        let loop = context.eventLoop
        let this = NIOLoopBound(self, eventLoop: loop)
        awaiting.insert(streamID)
        // Runs synchronously until the handler first suspends: a handler that never does answers
        // without a hop through the executor. After a suspension it resumes on this event loop.
        let task = Task.immediate(executorPreference: executor) {
            let response = await endpoint.handle(request)
            if loop.inEventLoop {
                this.value.finish(streamID: streamID, response: response)
            } else {
                loop.execute { this.value.finish(streamID: streamID, response: response) }
            }
        }
        if awaiting.contains(streamID) { running[streamID] = task }
    }

    private func finish(streamID: Int32, response: HTTPResponse) {
        running.removeValue(forKey: streamID)
        guard awaiting.remove(streamID) != nil else { return }  // reset or connection gone
        respond(streamID: streamID, response)
        scheduleSend()
    }

    private func respond(streamID: Int32, _ response: HTTPResponse) {
        let fields = response.headers.map { HTTPField(name: $0.name, value: $0.value) }
        try? session?.submitResponse(streamID: streamID, status: response.status, headers: fields, body: response.body)
    }

    // MARK: Time limits

    private func tick() {
        guard let context, let session else { return }
        switch deadlines.tick(at: .now()) {
        case nil:
            return
        case .abandonRequests(let streamIDs):
            logger.debug(
                "resetting requests that did not arrive in time",
                metadata: ["count": "\(streamIDs.count)", "peer": "\(connection.peerAddress ?? "?")"])
            for id in streamIDs { session.resetStream(id, errorCode: .cancel) }
            sendOutput()
        case .closeIdle:
            session.submitGoAway()
            sendOutput()
            context.close(promise: nil)
        case .closeStalled:
            logger.info("closing a connection whose peer stopped reading", metadata: ["peer": "\(connection.peerAddress ?? "?")"])
            context.close(promise: nil)
        }
    }

    // MARK: Output

    var shouldCloseAfterSending: Bool { draining && awaiting.isEmpty && (session?.openStreamCount ?? 0) == 0 }

    /// Bytes taken from nghttp2 per send; nothing while the channel is over its high-water mark.
    var outputLimit: Int { context?.channel.isWritable == false ? 0 : Self.sendChunk }

    private func cancelAll() {
        for task in running.values { task.cancel() }
        running.removeAll()
        awaiting.removeAll()
    }
}

/// What a handler may know about the connection a request came on.
struct ConnectionInfo: Sendable {
    var peerAddress: String?
    var tlsClientIdentity: String?
}
