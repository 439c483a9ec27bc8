import Foundation
import Logging
import NIOCore

/// Says in the log when accepting fails (out of file descriptors, most often), once a minute at
/// most; `AcceptBackoffHandler` before it pauses accepting meanwhile.
final class AcceptFailureLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any

    private let log: RateLimitedLog

    init(logger: Logger) {
        log = RateLimitedLog(logger: logger, interval: .seconds(60))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError, [EMFILE, ENFILE].contains(error.errnoCode) {
            log.warning(
                "cannot accept connections: out of file descriptors; raise the open-file limit or lower --max-connections",
                metadata: ["error": "\(error)"])
        } else {
            log.warning("cannot accept a connection", metadata: ["error": "\(error)"])
        }
        context.fireErrorCaught(error)
    }
}
