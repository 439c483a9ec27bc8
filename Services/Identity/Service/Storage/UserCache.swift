import GRDB
import Synchronization

/// Users as GetMe reads them, kept in memory: identity is the only writer of its database, and
/// every write to a user row calls `invalidate()` once committed.
///
/// A read that overlaps a write is not kept: the generation is taken before reading and the
/// result stored only if no invalidation happened in between.
final class UserCache: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var users: [String: UserRecord] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    func user(id: String, pool: DatabasePool) async throws -> UserRecord? {
        let (cached, generation) = state.withLock { ($0.users[id], $0.generation) }
        if let cached { return cached }
        guard let user = try await pool.read({ db in try UserRecord.fetch(db, id: id) }) else { return nil }
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.users.count >= capacity { state.users.removeAll(keepingCapacity: true) }
            state.users[id] = user
        }
        return user
    }

    /// Call after committing any change to a user row.
    func invalidate() {
        state.withLock { state in
            state.generation &+= 1
            state.users.removeAll(keepingCapacity: true)
        }
    }
}
