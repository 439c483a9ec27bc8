import ConnectTransport
import Foundation
import Logging
import OTel
import Prometheus
import ServiceLifecycle
import Tracing

/// Tracing for one process: spans exported over OTLP/HTTP when the standard `OTEL_*` variables
/// ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), off
/// otherwise. Finished spans wait in a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048) that a
/// background task drains: a slow or absent collector costs spans, counted in
/// `otel_spans_dropped_total`, never a call's time.
public enum TraceExport {
    /// Whether `environment` configures export: an OTLP endpoint is given, and neither
    /// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns it off.
    public static func isConfigured(_ environment: [String: String]) -> Bool {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0.lowercased() } }
        guard value("OTEL_EXPORTER_OTLP_ENDPOINT") != nil || value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != nil else { return false }
        return value("OTEL_SDK_DISABLED") != "true" && value("OTEL_TRACES_EXPORTER") != "none"
    }

    /// When configured, bootstraps the process's tracer and returns its exporter, to run beside
    /// the service and stop after it (flushing what is queued); nil when tracing is off. Call once,
    /// at start, after `ServiceMain.bootstrapLogging` and before the service's endpoints are made
    /// (each looks the tracer up once).
    public static func bootstrap(
        serviceName: String, metrics: PrometheusCollectorRegistry?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (any Service)? {
        guard isConfigured(environment) else { return nil }

        let dropped = SpanLossCounter(metrics: metrics)
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName  // OTEL_SERVICE_NAME overrides it
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.diagnosticLogger = .custom(
            Logger(label: "otel") { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return SpanLossCountingHandler(forwardingTo: handler, counter: dropped)
            })
        // parentbased_traceidratio: this process draws its roots (RootSamplingTracer) and
        // swift-otel, which reads the sampler from the environment, samples every root it is given.
        let rootRatio = TraceSampling.rootRatio(
            sampler: environment["OTEL_TRACES_SAMPLER"], argument: environment["OTEL_TRACES_SAMPLER_ARG"])
        if rootRatio != nil { setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on", 1) }
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        if let rootRatio {
            InstrumentationSystem.bootstrap(RootSamplingTracer(base: backend.factory, ratio: rootRatio))
        } else {
            InstrumentationSystem.bootstrap(backend.factory)
        }
        Logger(label: serviceName).info(
            "exporting traces over OTLP",
            metadata: [
                "endpoint": "\(environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "")",
                "sampler": "\(environment["OTEL_TRACES_SAMPLER"] ?? "parentbased_always_on") \(environment["OTEL_TRACES_SAMPLER_ARG"] ?? "")"
            ])
        return backend.service
    }
}

/// `otel_spans_dropped_total{reason}`: spans that never reached the collector, because the queue
/// was full (`queue_full`) or their batch could not be delivered (`export_failed`).
final class SpanLossCounter: Sendable {
    private let queueFull: Counter?
    private let exportFailed: Counter?

    init(metrics: PrometheusCollectorRegistry?) {
        let help =
            "Finished spans not exported, by reason: queue_full (the exporter fell behind) or export_failed (the collector did not take the batch)."
        func counter(_ reason: String) -> Counter? {
            metrics?.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "otel", subsystem: "spans", metricName: "dropped", unitName: "total", helpText: help),
                labels: [("reason", reason)])
        }
        queueFull = counter("queue_full")
        exportFailed = counter("export_failed")
    }

    func countQueueFull(_ spans: Int) { queueFull?.increment(by: Int64(spans)) }
    func countExportFailed(_ spans: Int) { exportFailed?.increment(by: Int64(spans)) }
}

/// The exporter's own log (swift-otel reports lost spans only there): passes every line on and
/// counts the spans its "dropped" and "failed to export" warnings name.
struct SpanLossCountingHandler: LogHandler {
    var forwardingTo: StreamLogHandler
    let counter: SpanLossCounter

    init(forwardingTo handler: StreamLogHandler, counter: SpanLossCounter) {
        self.forwardingTo = handler
        self.counter = counter
    }

    var metadata: Logger.Metadata {
        get { forwardingTo.metadata }
        set { forwardingTo.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { forwardingTo.logLevel }
        set { forwardingTo.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { forwardingTo[metadataKey: key] }
        set { forwardingTo[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        func number(_ key: String) -> Int? {
            guard case .string(let text)? = event.metadata?[key] ?? metadata[key] else { return nil }
            return Int(text)
        }
        let message = event.message.description
        if message.hasPrefix("Spans were dropped"), let count = number("dropped_count") {
            counter.countQueueFull(count)
        } else if message.hasPrefix("Failed to export batch"), let count = number("batch_size") {
            counter.countExportFailed(count)
        }
        forwardingTo.log(event: event)
    }
}
