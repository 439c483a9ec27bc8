import NGHTTP2
import NIOCore

/// What the client and server HTTP/2 handlers share: feeding an `HTTP2Session` and sending what it
/// queued, one write and one flush per event-loop tick however many answers finished in it.
protocol HTTP2SessionDriver: ChannelInboundHandler, SendableMetatype where OutboundOut == ByteBuffer {
    var session: HTTP2Session? { get }
    var context: ChannelHandlerContext? { get }
    var flushScheduled: Bool { get set }
    /// Reacts to what the peer's bytes, or sending ours, meant.
    func handle(_ events: [HTTP2Event])
    /// Whether the connection is finished once output has been sent (beyond nghttp2's own view).
    var shouldCloseAfterSending: Bool { get }
    /// How many bytes one send may take from nghttp2 (0 holds everything back).
    var outputLimit: Int { get }
}

extension HTTP2SessionDriver {
    var outputLimit: Int { .max }

    /// Coalesces everything queued during this loop tick into one send.
    func scheduleSend() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            this.value.flushScheduled = false
            this.value.sendOutput()
        }
    }

    /// Writes and flushes what the session has queued (up to `outputLimit`; the rest goes on
    /// the next tick while the channel stays writable); closes the connection when it is done.
    func sendOutput() {
        guard let session, let context else { return }
        let limit = outputLimit
        guard limit > 0 else { return }
        var buffer = context.channel.allocator.buffer(capacity: 0)
        do {
            handle(try session.collectOutput(into: &buffer, limit: limit))
        } catch {
            context.close(promise: nil)
            return
        }
        let full = buffer.readableBytes >= limit
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if full { scheduleSend() }  // nghttp2 may hold more
        if !session.isAlive || shouldCloseAfterSending {
            context.close(promise: nil)
        }
    }
}
