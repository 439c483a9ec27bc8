import NGHTTP2
import NIOCore

/// What every connection of one server is held to, built once by `ConnectServer`.
struct ServerConnectionSettings: Sendable {
    var http2: HTTP2Limits
    var idleTimeout: TimeAmount
    var requestTimeout: TimeAmount
    var bodyBudget: BodyBudget
    /// The process's body memory, shared by every connection.
    let pool: BodyMemoryPool
    /// How often a connection checks its time limits.
    var tickInterval: TimeAmount

    /// A new connection's time limits. A peer that does not take our answers within the request
    /// timeout is treated like one that does not send its request within it.
    func deadlines(now: NIODeadline) -> ConnectionDeadlines {
        ConnectionDeadlines(idleTimeout: idleTimeout, requestTimeout: requestTimeout, stallTimeout: requestTimeout, now: now)
    }
}
