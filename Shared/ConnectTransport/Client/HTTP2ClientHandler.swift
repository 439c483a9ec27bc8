import NGHTTP2
import NIOCore
import RPCCore

/// Drives the client side of one HTTP/2 connection: submits requests, matches answers to them,
/// enforces deadlines, and reports when the connection goes away.
final class HTTP2ClientHandler: HTTP2SessionDriver {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a call's stream ended with.
    enum Outcome: Sendable {
        case response(HTTP2Message)
        /// The server never processed the call (REFUSED_STREAM or above GOAWAY's last stream): safe to retry.
        case refused
        case failed(RPCError)
    }

    private struct PendingCall {
        var promise: EventLoopPromise<Outcome>
        var token: UInt64
        var response: HTTP2Message?
        var timer: Scheduled<Void>?
    }

    private let limits: HTTP2Limits
    private let onGoingAway: @Sendable () -> Void
    private(set) var session: HTTP2Session?
    private(set) var context: ChannelHandlerContext?
    private var pending: [Int32: PendingCall] = [:]
    private var streamsByToken: [UInt64: Int32] = [:]
    var flushScheduled = false
    private var goingAway = false

    init(limits: HTTP2Limits, onGoingAway: @escaping @Sendable () -> Void) {
        self.limits = limits
        self.onGoingAway = onGoingAway
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        do {
            session = try HTTP2Session(role: .client, limits: limits)
            sendOutput()
        } catch {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        do {
            handle(try session.receive(unwrapInboundIn(data)))
        } catch {
            sendOutput()
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sendOutput()
    }

    func channelInactive(context: ChannelHandlerContext) {
        markGoingAway()
        let calls = pending
        pending.removeAll()
        streamsByToken.removeAll()
        for call in calls.values {
            call.timer?.cancel()
            call.promise.succeed(.failed(RPCError(.unavailable, "the connection to the server closed during the call")))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Calls (on the event loop)

    /// Starts a call; `token` lets the caller cancel it later.
    func submit(headers: [HTTPField], body: ByteBuffer, deadline: NIODeadline?, token: UInt64, promise: EventLoopPromise<Outcome>) {
        guard let session, let context, !goingAway else {
            promise.succeed(.refused)
            return
        }
        let streamID: Int32
        do {
            streamID = try session.submitRequest(headers: headers, body: body)
        } catch {
            promise.succeed(.refused)
            return
        }
        var call = PendingCall(promise: promise, token: token)
        if let deadline {
            let this = NIOLoopBound(self, eventLoop: context.eventLoop)
            call.timer = context.eventLoop.scheduleTask(deadline: deadline) {
                this.value.abandon(token: token, with: RPCError(.deadlineExceeded, "the call did not finish before its deadline"))
            }
        }
        pending[streamID] = call
        streamsByToken[token] = streamID
        scheduleSend()
    }

    /// Resets the call's stream and fails it (task cancellation or deadline).
    func abandon(token: UInt64, with error: RPCError) {
        guard let streamID = streamsByToken.removeValue(forKey: token), let call = pending.removeValue(forKey: streamID) else { return }
        call.timer?.cancel()
        session?.resetStream(streamID, errorCode: .cancel)
        call.promise.succeed(.failed(error))
        scheduleSend()
    }

    func handle(_ events: [HTTP2Event]) {
        for event in events {
            switch event {
            case .message(let streamID, let message):
                pending[streamID]?.response = message
            case .bodyTooLarge(let streamID):
                if let call = pending.removeValue(forKey: streamID) {
                    streamsByToken.removeValue(forKey: call.token)
                    call.timer?.cancel()
                    session?.resetStream(streamID, errorCode: .cancel)
                    call.promise.succeed(.failed(RPCError(.resourceExhausted, "the response exceeds \(limits.maxBodyBytes) bytes")))
                }
            case .streamClosed(let streamID, let errorCode):
                guard let call = pending.removeValue(forKey: streamID) else { continue }
                streamsByToken.removeValue(forKey: call.token)
                call.timer?.cancel()
                if let response = call.response {
                    call.promise.succeed(.response(response))
                } else if errorCode == .refusedStream {
                    call.promise.succeed(.refused)
                } else {
                    call.promise.succeed(.failed(RPCError(.unavailable, "the server reset the call (\(errorCode))")))
                }
            case .goAway:
                markGoingAway()
            case .requestBegun:
                break  // server side only
            }
        }
    }

    private func markGoingAway() {
        guard !goingAway else { return }
        goingAway = true
        onGoingAway()
    }

    // MARK: Output

    var shouldCloseAfterSending: Bool { false }
}
