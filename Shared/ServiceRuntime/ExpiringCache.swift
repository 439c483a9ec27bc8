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

    /// The value kept for `key`, if it is still fresh.
    public func cached(_ key: Key) -> Value? {
        let now = ContinuousClock.now
        guard let entry = entries.withLock({ $0[key] }), entry.until > now else { return nil }
        return entry.value
    }

    /// Keeps `value` for `key` (fetched by other means, e.g. several at once).
    public func store(_ value: Value, for key: Key) {
        let now = ContinuousClock.now
        entries.withLock { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value.until > now } }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (value, now + lifetime)
        }
    }

    /// Forgets `key`, so the next `value(for:)` fetches afresh.
    public func remove(_ key: Key) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    public func value<Failure: Error>(for key: Key, fetch: () async throws(Failure) -> Value) async throws(Failure) -> Value {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[key] }), entry.until > now { return entry.value }
        let value = try await fetch()
        store(value, for: key)
        return value
    }
}
