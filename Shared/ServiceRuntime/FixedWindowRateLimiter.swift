import NIOConcurrencyHelpers
import NIOCore

/// At most `limit` events per key in each `window`, in memory (per process: with several
/// replicas behind a balancer the effective limit is that many times higher, which is fine for
/// the abuse it is for). The table is bounded: it is cleared when a window ends.
public final class FixedWindowRateLimiter: Sendable {
    private let limit: Int
    private let window: TimeAmount
    private let state = NIOLockedValueBox((started: NIODeadline.now(), counts: [String: Int]()))

    public init(limit: Int, window: TimeAmount) {
        self.limit = limit
        self.window = window
    }

    /// Counts an event for `key`; false when the key is over its limit in this window.
    public func admit(_ key: String, now: NIODeadline = .now()) -> Bool {
        state.withLockedValue { state in
            if now - state.started >= window || state.counts.count > 100_000 {
                state = (now, [:])
            }
            let count = state.counts[key, default: 0] + 1
            state.counts[key] = count
            return count <= limit
        }
    }
}
