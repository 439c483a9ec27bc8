import ConnectTransport
import GRDB
import Tracing

/// Database transactions as spans of the current trace, named for the storage method that runs
/// them (`sqlite recordBinding`): which calls wait on the database, and for how long. Never the
/// statements' arguments. Only inside a recorded trace: background work's polling starts none.
enum DatabaseSpan {
    static func run<Result>(system: String, function: String, _ body: (any Span) async throws -> Result) async throws -> Result {
        let current = ServiceContext.current
        guard let context = current, !TraceSampling.isUnrecorded(context) else {
            return try await body(NoOpTracer.NoOpSpan(context: current ?? .topLevel))
        }
        let operation = function.prefix { $0 != "(" }
        return try await withSpan("\(system) \(operation)", context: context, ofKind: .client) { span in
            span.attributes["db.system.name"] = system
            span.attributes["db.operation.name"] = String(operation)
            return try await body(span)
        }
    }
}

extension DatabasePool {
    /// `write` (a transaction) as a span of the current trace.
    public func tracedWrite<Result: Sendable>(
        function: String = #function, _ updates: @Sendable (Database) throws -> Result
    ) async throws -> Result {
        try await DatabaseSpan.run(system: "sqlite", function: function) { _ in try await write(updates) }
    }

    /// `read` (a snapshot) as a span of the current trace.
    public func tracedRead<Result: Sendable>(
        function: String = #function, _ value: @Sendable (Database) throws -> Result
    ) async throws -> Result {
        try await DatabaseSpan.run(system: "sqlite", function: function) { _ in try await read(value) }
    }
}
