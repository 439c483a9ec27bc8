import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A log line that a flood cannot multiply: at most one per `interval` for each message, saying
/// how many like it were left out since the last one. Counters in `/metrics` carry the totals.
public final class RateLimitedLog: Sendable {
    private let logger: Logger
    private let interval: TimeAmount
    private let last = NIOLockedValueBox([String: (at: NIODeadline, suppressed: Int)]())

    public init(logger: Logger, interval: TimeAmount = .seconds(60)) {
        self.logger = logger
        self.interval = interval
    }

    public func warning(_ message: String, metadata: Logger.Metadata = [:]) {
        log(.warning, message, metadata: metadata)
    }

    public func info(_ message: String, metadata: Logger.Metadata = [:]) {
        log(.info, message, metadata: metadata)
    }

    private func log(_ level: Logger.Level, _ message: String, metadata: Logger.Metadata) {
        let now = NIODeadline.now()
        let suppressed = last.withLockedValue { last -> Int? in
            if let entry = last[message], now - entry.at < interval {
                last[message] = (entry.at, entry.suppressed + 1)
                return nil
            }
            let suppressed = last[message]?.suppressed ?? 0
            if last.count > 256 { last.removeAll() }
            last[message] = (now, 0)
            return suppressed
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
        logger.log(level: level, "\(message)", metadata: metadata)
    }
}
