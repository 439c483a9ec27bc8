import Logging
import NGHTTP2
import NIOCore

/// Serves one HTTP/2 connection: feeds the nghttp2 session, runs each request's handler as a task
/// on this connection's event loop, and writes answers back, one flush per loop tick.
final class HTTP2ServerHandler: HTTP2SessionDriver {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let endpoint: ConnectEndpoint
    private let limits: HTTP2Limits
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

    init(endpoint: ConnectEndpoint, limits: HTTP2Limits, connection: ConnectionInfo, logger: Logger) {
        self.endpoint = endpoint
        self.limits = limits
        self.connection = connection
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        do {
            session = try HTTP2Session(role: .server, limits: limits)
            sendOutput()
        } catch {
            logger.error("cannot start an HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelAll()
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

    func channelInactive(context: ChannelHandlerContext) {
        cancelAll()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerDrainEvent {
            draining = true
            session?.submitGoAway()
            sendOutput()
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all, awaiting.isEmpty {
            session?.submitGoAway()
            sendOutput()
            context.close(promise: nil)
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
        for event in events {
            switch event {
            case .message(let streamID, let message):
                start(streamID: streamID, message: message)
            case .bodyTooLarge(let streamID):
                respond(streamID: streamID, endpoint.bodyTooLargeResponse())
            case .streamClosed(let streamID, _):
                // The peer reset the stream or went away mid-call: nobody waits for the answer.
                awaiting.remove(streamID)
                running.removeValue(forKey: streamID)?.cancel()
            case .goAway:
                break
            }
        }
    }

    private func start(streamID: Int32, message: HTTP2Message) {
        guard let context, let executor else { return }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(message.fields.count)
        for field in message.fields where !field.name.hasPrefix(":") {
            headers.append((field.name, field.value))
        }
        let request = HTTPRequest(method: message[":method"] ?? "", target: message[":path"] ?? "/", headers: headers,
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

    // MARK: Output

    var shouldCloseAfterSending: Bool { draining && awaiting.isEmpty && (session?.openStreamCount ?? 0) == 0 }

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
