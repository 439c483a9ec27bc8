import Prometheus
import Synchronization

/// The RPC server's Prometheus series: calls by method and code, and call latency by method.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Series already made, so a call costs one dictionary lookup rather than a registry lookup.
    private let series = SeriesCache()
    private static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)
    ]

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Counts one finished call. `method` must be a registered path (or "unknown"), so the number of
    /// series stays bounded whatever clients send.
    func record(method: String, code: String, duration: Duration) {
        let (counter, histogram) = series.lookup(method: method, code: code) {
            let calls = MetricNameDescriptor(
                namespace: "rpc", subsystem: "server", metricName: "calls", unitName: "total",
                helpText: "Finished RPC calls by method and Connect code (ok for success).")
            let latency = MetricNameDescriptor(
                namespace: "rpc", subsystem: "server", metricName: "call_duration", unitName: "seconds",
                helpText: "RPC call latency by method.")
            return (
                registry.makeCounter(descriptor: calls, labels: [("method", method), ("code", code)]),
                registry.makeDurationHistogram(descriptor: latency, labels: [("method", method)], buckets: Self.buckets)
            )
        }
        counter.increment()
        histogram.record(duration)
    }

    /// Counts one event a client can cause at will (a refused webhook message, say), where a log
    /// line each would let a flood fill the log. `reason` must come from a fixed set.
    public func countRefusal(_ what: String, reason: String) {
        count(namespace: "refused", subsystem: what, name: "requests", help: "Requests refused, by reason.", label: ("reason", reason))
    }

    /// Counts one occurrence of something the service did, as `<namespace>_<subsystem>_<name>_total`
    /// with one label, whose value must come from a fixed set.
    public func count(namespace: String, subsystem: String, name: String, help: String, label: (name: String, value: String)) {
        let descriptor = MetricNameDescriptor(namespace: namespace, subsystem: subsystem, metricName: name, unitName: "total", helpText: help)
        registry.makeCounter(descriptor: descriptor, labels: [(label.name, label.value)]).increment()
    }

    /// The Prometheus text exposition of every series in the registry.
    public func exposition() -> [UInt8] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return bytes
    }
}

/// The counter and histogram of each (method, code) seen so far.
private final class SeriesCache: Sendable {
    private struct Key: Hashable {
        var method: String
        var code: String
    }

    private let entries = Mutex<[Key: (Counter, DurationHistogram)]>([:])

    func lookup(method: String, code: String, make: () -> (Counter, DurationHistogram)) -> (Counter, DurationHistogram) {
        let key = Key(method: method, code: code)
        if let found = entries.withLock({ $0[key] }) { return found }
        let made = make()
        entries.withLock { $0[key] = made }
        return made
    }
}
