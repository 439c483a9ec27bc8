import Foundation
import Logging
import PostgresNIO
import RPCCore
import ServiceLifecycle
import Tracing

/// A service's PostgreSQL database, shared by all its replicas: a connection pool running from
/// `init` until `close`, transactions that survive PostgreSQL's deadlock and serialization
/// aborts, and notifications between replicas.
public final class PostgresBackend: Sendable {
    public let client: PostgresClient
    public let logger: Logger
    /// The pool's own work (`PostgresClient.run`), started here and stopped by `close`.
    private let running: Task<Void, Never>

    public init(configuration: PostgresClient.Configuration, logger: Logger) {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        running = Task { await client.run() }
    }

    /// Brings the schema up to `migrations` (once, however many replicas start together).
    public func migrate(service: String, migrations: [PostgresMigration]) async throws {
        try await PostgresMigrator.migrate(client, service: service, migrations: migrations, logger: logger)
    }

    /// Runs `body` in one transaction at READ COMMITTED: the caller takes the row or advisory
    /// locks its rule needs, first. When PostgreSQL aborts the transaction for a deadlock or a
    /// serialization failure (nothing was written), it runs again, up to four more times, so
    /// `body` must only read and write the database.
    /// The transaction is a span of the current trace, named for the storage method (`function`).
    public func transaction<Result: Sendable>(
        function: String = #function, _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await DatabaseSpan.run(system: "postgresql", function: function) { span in
            try await transactionRetried(span: span, body)
        }
    }

    private func transactionRetried<Result: Sendable>(
        span: any Span, _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        var attempt = 0
        while true {
            span.attributes["db.transaction.attempts"] = attempt + 1
            do {
                return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
            } catch let failure as PostgresTransactionError {
                // What went wrong, unwrapped: a rule's refusal thrown by `body` reaches the caller as itself.
                let error = failure.closureError ?? failure.commitError ?? failure.beginError ?? failure
                attempt += 1
                guard attempt < 5, let code = (error as? PSQLError)?.serverInfo?[.sqlState],
                    code == PostgresError.Code.deadlockDetected.raw || code == PostgresError.Code.serializationFailure.raw
                else { throw error }
                logger.debug("transaction retried", metadata: ["sqlstate": "\(code)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .milliseconds(Int64.random(in: 1...20) * Int64(attempt)))
            }
        }
    }

    /// True when the database answers a query within two seconds (the readiness probe).
    public func isReachable() async -> Bool {
        let client = self.client
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    for try await value in try await client.query("SELECT 1").decode(Int32.self) { return value == 1 }
                    return false
                } catch { return false }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return false
            }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
    }

    /// Tells every replica listening on `channel` (delivered when the caller's transaction commits).
    public static func notify(_ connection: PostgresConnection, channel: String, logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(channel), '')", logger: logger)
    }

    /// Background work that calls `changed` for every notification on `channel`, and also each
    /// time it (re)connects, since notifications sent while it was not listening are lost: a
    /// cache it clears is never staler than the time a lost connection takes to come back.
    public func listener(channel: String, changed: @escaping @Sendable () -> Void) -> any Service {
        NotificationListener(database: self, channel: channel, changed: changed)
    }

    /// Stops the pool, closing its connections.
    public func close() async {
        running.cancel()
        await running.value
    }
}

/// Listens on one channel for as long as the service runs (see `PostgresBackend.listener`).
private struct NotificationListener: Service {
    let database: PostgresBackend
    let channel: String
    let changed: @Sendable () -> Void

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await database.client.withConnection { connection in
                        try await connection.listen(on: channel) { notifications in
                            changed()
                            for try await _ in notifications { changed() }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    database.logger.warning("listening for changes failed; trying again", metadata: ["channel": "\(channel)", "error": "\(error)"])
                }
                changed()
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// The database holds something this build cannot read (a value outside what its schema allows).
public struct PostgresStorageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
