import Synchronization

/// Answers from another service, reused for a short `lifetime`, for read-only hot paths where a
/// few seconds of staleness is acceptable. Failures are not cached.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: (value: Value, until: ContinuousClock.Instant)]>([:])
    private let lifetime: Duration
    private let capacity: Int

    public init(lifetime: Duration, capacity: Int = 50_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    public func value<Failure: Error>(for key: Key, fetch: () async throws(Failure) -> Value) async throws(Failure) -> Value {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[key] }), entry.until > now { return entry.value }
        let value = try await fetch()
        entries.withLock { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value.until > now } }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (value, now + lifetime)
        }
        return value
    }
}
