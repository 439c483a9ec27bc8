import Synchronization

/// Values read from a service's own database, kept in memory for hot paths. Only valid because
/// each service is the sole writer of its database: every committed write that could change a
/// cached value must call `invalidate()`.
///
/// A read that overlaps a write is not kept: the generation is taken before loading and the
/// result stored only if no invalidation happened in between. Absent values (nil) are cached too.
public final class ReadThroughCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var values: [Key: Value?] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    /// When `capacity` values are held, the cache starts again empty.
    public init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// The cached value for `key`, or what `load` reads (then cached).
    public func value(for key: Key, load: () async throws -> Value?) async rethrows -> Value? {
        let (cached, generation) = state.withLock { ($0.values[key], $0.generation) }
        if let cached { return cached }
        let loaded = try await load()
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.values.count >= capacity { state.values.removeAll(keepingCapacity: true) }
            state.values[key] = .some(loaded)
        }
        return loaded
    }

    /// Call after committing any change that may alter a cached value.
    public func invalidate() {
        state.withLock { state in
            state.generation &+= 1
            state.values.removeAll(keepingCapacity: true)
        }
    }
}
