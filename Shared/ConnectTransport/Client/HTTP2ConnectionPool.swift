import NGHTTP2
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RPCCore

/// Keeps one HTTP/2 connection to an upstream: opens it on first use, replaces it after GOAWAY or
/// close, and after a failed connect refuses calls fast until a growing, jittered backoff has passed
/// (unless a call whose other replicas all failed it asks to try anyway).
/// An upstream that let a call reach its deadline unanswered is remembered as unresponsive for a
/// while, so that calls try its other replicas first (a stopped or stalled process keeps its
/// connections open and answers nothing).
final class HTTP2ConnectionPool: Sendable {
    private let target: UpstreamAddress
    private let configuration: ConnectClient.Configuration
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State())

    private struct State {
        enum Phase {
            case idle
            case connecting(EventLoopFuture<HTTP2ClientConnection>)
            case ready(HTTP2ClientConnection)
            case backingOff(until: NIODeadline, error: RPCError)
            case closed
        }
        var phase = Phase.idle
        var failures = 0
        var unresponsiveUntil: NIODeadline?
    }

    /// How long an upstream that left a call unanswered is tried after its replicas.
    static let unresponsivePeriod = TimeAmount.seconds(10)

    init(target: UpstreamAddress, configuration: ConnectClient.Configuration, group: any EventLoopGroup) {
        self.target = target
        self.configuration = configuration
        self.group = group
    }

    /// A connection to send on, opening one if needed; waiting for it counts against `deadline`.
    /// While backing off it fails at once, unless `ignoringBackoff`: then it tries to connect anyway
    /// (the caller's last resort, every other replica having just failed it).
    func connection(deadline: NIODeadline?, ignoringBackoff: Bool = false) async throws(RPCError) -> HTTP2ClientConnection {
        let next: Result<EventLoopFuture<HTTP2ClientConnection>, RPCError> = state.withLockedValue { state in
            switch state.phase {
            case .ready(let connection):
                return .success(connection.channel.eventLoop.makeSucceededFuture(connection))
            case .connecting(let future):
                return .success(future)
            case .backingOff(let until, let error) where NIODeadline.now() < until && !ignoringBackoff:
                return .failure(error)
            case .closed:
                return .failure(RPCError(.unavailable, "the client is closed"))
            case .idle, .backingOff:
                let future = connect()
                state.phase = .connecting(future)
                return .success(future)
            }
        }
        let future = try next.get().within(deadline)
        do {
            return try await future.get()
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.unavailable, "cannot reach \(target.host):\(target.port): \(error)")
        }
    }

    /// The upstream as the request's `:authority` names it.
    var authority: String { "\(target.host):\(target.port)" }
    var scheme: String { target.secure ? "https" : "http" }

    /// Whether the last connect failed and the pool is waiting before it tries again.
    var isBackingOff: Bool {
        state.withLockedValue { state in
            if case .backingOff(let until, _) = state.phase { return NIODeadline.now() < until }
            return false
        }
    }

    /// Whether a call reached its deadline here unanswered within `unresponsivePeriod`.
    var isUnresponsive: Bool {
        state.withLockedValue { state in state.unresponsiveUntil.map { NIODeadline.now() < $0 } ?? false }
    }

    /// A call reached its deadline with no answer from this upstream.
    func markUnresponsive() {
        state.withLockedValue { $0.unresponsiveUntil = .now() + Self.unresponsivePeriod }
    }

    /// Stops handing out `connection` (it is going away or refused a call).
    func discard(_ connection: HTTP2ClientConnection) {
        state.withLockedValue { state in
            if case .ready(let current) = state.phase, current === connection {
                state.phase = .idle
            }
        }
    }

    func close() async {
        let phase = state.withLockedValue { state in
            let phase = state.phase
            state.phase = .closed
            return phase
        }
        switch phase {
        case .ready(let connection): try? await connection.channel.close()
        // Closing does not wait for a connect still under way; its connection closes when it opens.
        case .connecting(let future): future.whenSuccess { $0.channel.close(promise: nil) }
        default: break
        }
    }

    private func connect() -> EventLoopFuture<HTTP2ClientConnection> {
        let loop = group.next()
        let limits = configuration.http2
        let target = self.target
        let sslContext: NIOSSLContext?
        do {
            sslContext = target.secure ? try configuration.tls.makeContext() : nil
        } catch {
            return loop.makeFailedFuture(RPCError(.unavailable, "TLS settings for \(target.host) are unusable: \(error)"))
        }
        let opened = NIOLockedValueBox<HTTP2ClientConnection?>(nil)
        let onGoingAway: @Sendable () -> Void = { [weak self] in
            if let connection = opened.withLockedValue({ $0 }) { self?.discard(connection) }
        }
        let future = ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let sslContext {
                        try operations.addHandler(
                            NIOSSLClientHandler(context: sslContext, serverHostname: target.host.isIPAddress ? nil : target.host))
                    }
                    try operations.addHandler(HTTP2ClientHandler(limits: limits, onGoingAway: onGoingAway))
                }
            }
            .connect(host: target.address ?? target.host, port: target.port)
            .flatMapThrowing { channel -> HTTP2ClientConnection in
                let handler = try channel.pipeline.syncOperations.handler(type: HTTP2ClientHandler.self)
                let connection = HTTP2ClientConnection(channel: channel, handler: handler)
                opened.withLockedValue { $0 = connection }
                channel.closeFuture.whenComplete { [weak self] _ in self?.discard(connection) }
                return connection
            }
        future.whenComplete { [weak self] result in
            self?.connectFinished(result)
        }
        return future
    }

    private func connectFinished(_ result: Result<HTTP2ClientConnection, any Error>) {
        state.withLockedValue { state in
            guard case .connecting = state.phase else { return }
            switch result {
            case .success(let connection):
                state.failures = 0
                state.phase = connection.channel.isActive ? .ready(connection) : .idle
            case .failure(let error):
                state.failures += 1
                // Full jitter over an exponential ceiling: 50 ms, 100 ms, ... up to 2 s.
                let ceiling = min(2_000, 50 << min(state.failures - 1, 6))
                let delay = TimeAmount.milliseconds(Int64.random(in: 0...Int64(ceiling)))
                state.phase = .backingOff(
                    until: .now() + delay,
                    error: RPCError(.unavailable, "cannot connect to \(target.description): \(error)"))
            }
        }
    }
}

/// One open HTTP/2 connection to an upstream.
final class HTTP2ClientConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<HTTP2ClientHandler>
    private static let tokens = NIOLockedValueBox<UInt64>(0)

    init(channel: any Channel, handler: HTTP2ClientHandler) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Sends one request and waits for its outcome; cancelling the task resets the stream.
    func execute(headers: [HTTPField], body: ByteBuffer, deadline: NIODeadline?) async throws(RPCError) -> HTTP2ClientHandler.Outcome {
        let token = Self.tokens.withLockedValue { value in
            value &+= 1
            return value
        }
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: HTTP2ClientHandler.Outcome.self)
        let handler = self.handler
        loop.execute {
            handler.value.submit(headers: headers, body: body, deadline: deadline, token: token, promise: promise)
        }
        let outcome = await withTaskCancellationHandler {
            try? await promise.futureResult.get()
        } onCancel: {
            loop.execute {
                handler.value.abandon(token: token, with: RPCError(.canceled, "the call was canceled"))
            }
        }
        return outcome ?? .failed(RPCError(.unavailable, "the call was lost"))
    }
}

extension EventLoopFuture where Value == HTTP2ClientConnection {
    /// This future, or a `deadline_exceeded` failure once `deadline` passes, whichever comes first.
    fileprivate func within(_ deadline: NIODeadline?) -> EventLoopFuture<HTTP2ClientConnection> {
        guard let deadline else { return self }
        let loop = eventLoop
        let promise = loop.makePromise(of: HTTP2ClientConnection.self)
        // Whichever comes first settles the promise; a promise may be completed only once.
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable () -> Bool = {
            settled.withLockedValue { done in
                defer { done = true }
                return !done
            }
        }
        let timer = loop.scheduleTask(deadline: deadline) {
            if settle() {
                promise.fail(RPCError(.deadlineExceeded, "the call did not finish before its deadline (still connecting)"))
            }
        }
        whenComplete { result in
            timer.cancel()
            if settle() { promise.completeWith(result) }
        }
        return promise.futureResult
    }
}
