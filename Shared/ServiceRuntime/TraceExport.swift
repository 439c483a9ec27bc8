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
        let settings = OTelEnvironment(environment)
        for (name, value) in settings.overrides {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        let logger = Logger(label: serviceName)
        for warning in settings.warnings { logger.warning("\(warning)") }
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        if let rootRatio = settings.rootRatio {
            InstrumentationSystem.bootstrap(RootSamplingTracer(base: backend.factory, ratio: rootRatio))
        } else {
            InstrumentationSystem.bootstrap(backend.factory)
        }
        logger.info(
            "exporting traces over OTLP",
            metadata: [
                "endpoint": "\(environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "")",
                "sampler": "\(settings.sampler)"
            ])
        return backend.service
    }
}

/// The standard `OTEL_*` variables as swift-otel is to read them. It stops the process
/// (`fatalError`) on values it knows but does not implement, among them the spec's own default
/// propagators, `tracecontext,baggage`; such values are left out here with a warning instead, as
/// the spec asks of values an SDK does not support. And `parentbased_traceidratio` is drawn by
/// this process (`RootSamplingTracer`), so swift-otel is told to sample every root it is given.
struct OTelEnvironment: Equatable {
    /// The root ratio this process draws, when `parentbased_traceidratio` asks for one.
    var rootRatio: Double?
    /// Variables to set (or, when nil, unset) before swift-otel reads the environment.
    var overrides: [String: String?] = [:]
    /// What was left out and why, for the log.
    var warnings: [String] = []
    /// The sampler in effect, for the log.
    var sampler = "parentbased_always_on"

    static let propagatorsSupported = ["tracecontext", "none"]
    static let propagatorsNotImplemented = ["baggage", "b3", "b3multi", "jaeger", "xray", "ottrace"]
    static let samplersNotImplemented = ["jaeger_remote", "parentbased_jaeger_remote", "xray"]

    init(_ environment: [String: String]) {
        func value(_ name: String) -> String? {
            environment[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }

        if let list = value("OTEL_PROPAGATORS") {
            var kept: [String] = []
            for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
                if Self.propagatorsSupported.contains(name) {
                    kept.append(name)
                } else if Self.propagatorsNotImplemented.contains(name) {
                    warnings.append(
                        "OTEL_PROPAGATORS: \(name) is not implemented here and is ignored; calls carry W3C trace context (tracecontext) only")
                } else {
                    warnings.append("OTEL_PROPAGATORS: \(name) is not a propagator and is ignored (use tracecontext, or none)")
                }
            }
            let written = kept.joined(separator: ",")
            if written != list { overrides["OTEL_PROPAGATORS"] = kept.isEmpty ? String?.none : written }
        }

        let writtenSampler = value("OTEL_TRACES_SAMPLER")
        let requestedSampler = writtenSampler?.lowercased()
        let argument = value("OTEL_TRACES_SAMPLER_ARG")
        if let requestedSampler, Self.samplersNotImplemented.contains(requestedSampler) {
            warnings.append(
                "OTEL_TRACES_SAMPLER: \(requestedSampler) is not implemented here and is ignored; every trace a caller sampled or this process starts is recorded"
            )
            overrides["OTEL_TRACES_SAMPLER"] = String?.none
        } else if let ratio = TraceSampling.rootRatio(sampler: requestedSampler, argument: argument) {
            if let argument, Double(argument) != ratio {
                warnings.append(
                    "OTEL_TRACES_SAMPLER_ARG: \(argument) is not a ratio from 0 to 1 and is ignored; every trace this process starts is recorded")
            }
            rootRatio = ratio
            sampler = "parentbased_traceidratio \(ratio)"
            overrides["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
        } else if let requestedSampler {
            sampler = requestedSampler
            // The spec's values are case-insensitive; swift-otel's are not.
            if writtenSampler != requestedSampler { overrides["OTEL_TRACES_SAMPLER"] = requestedSampler }
        }

        let protocolName = value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") != nil ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL"
        if value(protocolName)?.lowercased() == "grpc" {
            warnings.append("\(protocolName): grpc is not built in and is ignored; spans go over http/protobuf, which a collector takes on port 4318")
            overrides["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        }
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
