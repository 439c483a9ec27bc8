import Logging
import Synchronization

/// Collects every log line, to check what is and is not logged.
public final class CapturedLogs: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = "\(event.level) \(event.message) \(event.metadata ?? [:]) \(metadata)"
        lines.withLock { $0.append(text) }
    }

    public var text: String { lines.withLock { $0.joined(separator: "\n") } }
}
