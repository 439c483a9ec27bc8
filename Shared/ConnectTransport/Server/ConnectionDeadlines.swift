import NIOCore

/// The time limits of one server connection, as a value fed events and asked, on each tick,
/// what is overdue. Bytes alone never count as activity: a peer that trickles a byte now and
/// then keeps neither an idle connection nor an unfinished request alive.
struct ConnectionDeadlines {
    /// What the handler must do about a passed limit.
    enum Action: Equatable {
        /// These requests began too long ago and have not arrived whole: reset or refuse them.
        case abandonRequests([Int32])
        /// Nothing has been asked of the connection for the idle timeout: close it (GOAWAY first).
        case closeIdle
        /// The peer has not taken our answers for the stall timeout: close it.
        case closeStalled
    }

    let idleTimeout: TimeAmount
    let requestTimeout: TimeAmount
    let stallTimeout: TimeAmount
    /// Requests whose bytes are still arriving, by stream id (HTTP/1.1 uses one id), since when.
    private var arriving: [Int32: NIODeadline] = [:]
    /// Requests that arrived and are not answered yet.
    private var answering: Set<Int32> = []
    /// Since when nothing has been arriving or answering.
    private var idleSince: NIODeadline?
    private var unwritableSince: NIODeadline?

    init(idleTimeout: TimeAmount, requestTimeout: TimeAmount, stallTimeout: TimeAmount, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.stallTimeout = stallTimeout
        idleSince = now
    }

    var isIdle: Bool { arriving.isEmpty && answering.isEmpty }

    mutating func requestBegan(_ id: Int32, at now: NIODeadline) {
        arriving[id] = now
        idleSince = nil
    }

    /// The request arrived whole and its handler runs.
    mutating func requestArrived(_ id: Int32) {
        arriving.removeValue(forKey: id)
        answering.insert(id)
    }

    /// Answered, reset or abandoned: the request no longer holds the connection open.
    mutating func requestEnded(_ id: Int32, at now: NIODeadline) {
        arriving.removeValue(forKey: id)
        answering.remove(id)
        if isIdle, idleSince == nil { idleSince = now }
    }

    mutating func writabilityChanged(writable: Bool, at now: NIODeadline) {
        if writable {
            unwritableSince = nil
        } else if unwritableSince == nil {
            unwritableSince = now
        }
    }

    /// What is overdue at `now`, most drastic first; the abandoned requests are forgotten here.
    mutating func tick(at now: NIODeadline) -> Action? {
        if let since = unwritableSince, now - since >= stallTimeout { return .closeStalled }
        if let since = idleSince, isIdle, now - since >= idleTimeout { return .closeIdle }
        let overdue = arriving.filter { now - $0.value >= requestTimeout }.keys.sorted()
        guard !overdue.isEmpty else { return nil }
        for id in overdue { requestEnded(id, at: now) }
        return .abandonRequests(overdue)
    }
}
