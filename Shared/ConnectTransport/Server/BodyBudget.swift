import Synchronization

/// How many bytes of request bodies that have not arrived whole (or are still being answered)
/// the server holds: per connection, and for the whole process. A peer beyond its budget waits
/// on HTTP/2 flow control: the window it may still fill never exceeds what the budget grants.
public struct BodyBudget: Sendable {
    public var perConnection: Int
    public var perProcess: Int

    public init(perConnection: Int = 4 << 20, perProcess: Int = 32 << 20) {
        self.perConnection = perConnection
        self.perProcess = perProcess
    }
}

/// The process-wide share of a `BodyBudget`, which connections draw their windows from.
final class BodyMemoryPool: Sendable {
    /// What every HTTP/2 connection may send before any window update (RFC 9113 section 6.9.2).
    /// It cannot be taken back, so it is not drawn from the pool.
    static let protocolMinimum = 65_535

    private let available: Mutex<Int>

    init(bytes: Int) {
        available = Mutex(bytes)
    }

    /// Takes up to `wanted` bytes; returns how many were granted (possibly 0).
    func take(upTo wanted: Int) -> Int {
        available.withLock { available in
            let granted = max(0, min(wanted, available))
            available -= granted
            return granted
        }
    }

    func giveBack(_ bytes: Int) {
        guard bytes > 0 else { return }
        available.withLock { $0 += bytes }
    }

    var availableBytes: Int { available.withLock { $0 } }
}

/// One connection's share of the process's body memory: the window the peer may fill is the
/// protocol's minimum plus what it drew from the pool. Released body bytes reopen the window
/// only as far as that grant; more is drawn when the pool has some to spare.
struct ConnectionBodyGrant {
    let wanted: Int
    private(set) var drawn = 0

    init(perConnection: Int) {
        wanted = max(0, perConnection - BodyMemoryPool.protocolMinimum)
    }

    /// The connection window to advertise after drawing what the pool allows.
    mutating func topUp(from pool: BodyMemoryPool) -> Int? {
        guard drawn < wanted else { return nil }
        let more = pool.take(upTo: wanted - drawn)
        guard more > 0 else { return nil }
        drawn += more
        return BodyMemoryPool.protocolMinimum + drawn
    }

    /// Gives everything back when the connection ends.
    mutating func returnAll(to pool: BodyMemoryPool) {
        pool.giveBack(drawn)
        drawn = 0
    }
}
