import ConnectTransport
import Foundation
import Logging
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
    /// the service and stop after it (sending what is queued); nil when tracing is off. Call once,
    /// at start, after `ServiceMain.bootstrapLogging` and before the service's endpoints are made
    /// (each looks the tracer up once). Throws when the endpoint is not an http(s) URL or a
    /// certificate file named cannot be read.
    public static func bootstrap(
        serviceName: String, metrics: PrometheusCollectorRegistry?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (any Service)? {
        guard isConfigured(environment) else { return nil }
        let settings = try OTelEnvironment(environment, defaultServiceName: serviceName)
        let logger = Logger(label: serviceName)
        for warning in settings.warnings { logger.warning("\(warning)") }
        let exporter = try OTLPSpanExporter(settings: settings, lost: SpanLossCounter(metrics: metrics), logger: logger)
        InstrumentationSystem.bootstrap(ProcessTracer(sampler: settings.sampler, propagates: settings.propagates, sink: exporter.queue))
        logger.info(
            "exporting traces over OTLP",
            metadata: ["endpoint": "\(settings.endpoint)", "sampler": "\(settings.sampler.description)"])
        return exporter
    }
}

/// The standard `OTEL_*` variables for traces, read as the OpenTelemetry specification says.
/// Values it names that are not implemented here (the `baggage` propagator of its default
/// `tracecontext,baggage`, `b3`, the `jaeger_remote` sampler, export over gRPC, ...) are left out,
/// each with a warning, as it asks of an SDK that does not support them.
struct OTelEnvironment {
    /// Where batches are posted: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as written, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` followed by `/v1/traces`.
    var endpoint: String
    /// `OTEL_EXPORTER_OTLP_HEADERS` (or `..._TRACES_HEADERS`): sent with every export, never logged.
    var headers: [(name: String, value: String)] = []
    /// For an https collector: the CA to trust (`OTEL_EXPORTER_OTLP_CERTIFICATE`; the system's
    /// otherwise) and a client certificate (`..._CLIENT_CERTIFICATE`, `..._CLIENT_KEY`).
    var tls = TLSClientSettings()
    var sampler = TraceSampler.parentBasedAlwaysOn
    /// False for `OTEL_PROPAGATORS=none`.
    var propagates = true
    /// The resource every span is exported under: `service.name` and `OTEL_RESOURCE_ATTRIBUTES`.
    var resource: [(key: String, value: String)] = []
    var queueSize = 2048
    var batchSize = 512
    var scheduleDelay = Duration.milliseconds(5000)
    var exportTimeout = Duration.milliseconds(10000)
    /// What was left out and why, for the log.
    var warnings: [String] = []

    static let propagatorsSupported = ["tracecontext", "none"]
    static let propagatorsNotImplemented = ["baggage", "b3", "b3multi", "jaeger", "xray", "ottrace"]

    struct InvalidEndpoint: Error, CustomStringConvertible {
        var name: String
        var description: String { "\(name) is not an http:// or https:// URL with a host" }
    }

    init(_ environment: [String: String], defaultServiceName: String = "unknown_service") throws {
        func value(_ name: String) -> String? {
            environment[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        /// The traces-only variable when set, else the shared one; with the name it came from.
        func tracesValue(_ suffix: String) -> (name: String, value: String)? {
            for name in ["OTEL_EXPORTER_OTLP_TRACES_\(suffix)", "OTEL_EXPORTER_OTLP_\(suffix)"] {
                if let text = value(name) { return (name, text) }
            }
            return nil
        }
        func positiveInteger(_ name: String) -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), number > 0 else {
                warnings.append("\(name): \(text) is not a positive whole number and is ignored")
                return nil
            }
            return number
        }

        if let traces = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            endpoint = try Self.checkedURL(traces, name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        } else {
            let base = try Self.checkedURL(value("OTEL_EXPORTER_OTLP_ENDPOINT") ?? "", name: "OTEL_EXPORTER_OTLP_ENDPOINT")
            endpoint = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
        }

        if let (name, list) = tracesValue("HEADERS") {
            for entry in list.split(separator: ",") {
                let pair = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).removingPercentEncoding }
                guard pair.count == 2, let header = pair[0], let text = pair[1], !header.isEmpty else {
                    warnings.append("\(name): an entry is not key=value and is ignored")
                    continue
                }
                headers.append((header.lowercased(), text))
            }
        }

        tls.trustedCAPath = tracesValue("CERTIFICATE")?.value
        switch (tracesValue("CLIENT_CERTIFICATE"), tracesValue("CLIENT_KEY")) {
        case (let certificate?, let key?):
            tls.clientCertificatePath = certificate.value
            tls.clientPrivateKeyPath = key.value
        case (let certificate?, nil):
            warnings.append("\(certificate.name) is ignored: no OTEL_EXPORTER_OTLP_CLIENT_KEY names its key")
        case (nil, let key?):
            warnings.append("\(key.name) is ignored: no OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE names its certificate")
        case (nil, nil): break
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
            // Nothing usable left: the default, tracecontext.
            propagates = kept.contains("tracecontext") || !kept.contains("none")
        }

        if let name = value("OTEL_TRACES_SAMPLER") {
            let argument = value("OTEL_TRACES_SAMPLER_ARG")
            if let requested = TraceSampler(name: name, argument: argument) {
                sampler = requested
                if name.lowercased().hasSuffix("traceidratio"), let argument, Double(argument).map({ (0...1).contains($0) }) != true {
                    warnings.append(
                        "OTEL_TRACES_SAMPLER_ARG: \(argument) is not a ratio from 0 to 1 and is ignored; the ratio is 1 (every trace)")
                }
            } else {
                warnings.append(
                    "OTEL_TRACES_SAMPLER: \(name) is not implemented here and is ignored; every trace a caller sampled or this process starts is recorded"
                )
            }
        }

        if let (name, requested) = tracesValue("PROTOCOL"), requested.lowercased() != "http/protobuf" {
            warnings.append("\(name): \(requested) is not built in and is ignored; spans go over http/protobuf, which a collector takes on port 4318")
        }
        if let (name, requested) = tracesValue("COMPRESSION"), requested.lowercased() != "none" {
            warnings.append("\(name): \(requested) is not built in and is ignored; exports are sent uncompressed")
        }

        if let (name, _) = tracesValue("TIMEOUT"), let milliseconds = positiveInteger(name) { exportTimeout = .milliseconds(milliseconds) }
        if let delay = positiveInteger("OTEL_BSP_SCHEDULE_DELAY") { scheduleDelay = .milliseconds(delay) }
        if let limit = positiveInteger("OTEL_BSP_EXPORT_TIMEOUT") { exportTimeout = min(exportTimeout, .milliseconds(limit)) }
        if let size = positiveInteger("OTEL_BSP_MAX_QUEUE_SIZE") { queueSize = size }
        if let size = positiveInteger("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") { batchSize = size }
        batchSize = min(batchSize, queueSize)

        var serviceName: String?
        for entry in (value("OTEL_RESOURCE_ATTRIBUTES") ?? "").split(separator: ",") {
            let pair = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).removingPercentEncoding }
            guard pair.count == 2, let key = pair[0], let text = pair[1], !key.isEmpty else {
                warnings.append("OTEL_RESOURCE_ATTRIBUTES: an entry is not key=value and is ignored")
                continue
            }
            if key == "service.name" { serviceName = text } else { resource.append((key, text)) }
        }
        resource.insert(("service.name", value("OTEL_SERVICE_NAME") ?? serviceName ?? defaultServiceName), at: 0)
        resource.append(("telemetry.sdk.language", "swift"))
    }

    private static func checkedURL(_ text: String, name: String) throws -> String {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false else {
            throw InvalidEndpoint(name: name)
        }
        return text
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
