import ConnectTransport
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
import Tracing

@testable import ServiceRuntime

/// The exporter against a receiver we did not write the decoder of (`Tests/Fixtures/otlp_receiver.py`,
/// opentelemetry-proto's classes): what it sends decodes field for field, what is queued at
/// shutdown is sent, and what cannot go is counted.
@Suite(.serialized, .timeLimit(.minutes(2))) struct OTLPSpanExporterTests {
    /// Runs an exporter of spans ended by `tracer` (sampling every trace) with `variables` against
    /// a receiver writing to `spansFile`; `body` gets the tracer, the receiver and the metrics.
    static func withExporter(
        receiverArguments: [String] = [], scheme: String = "http", variables: [String: String] = [:],
        _ body: (ProcessTracer, ChildProcess, PrometheusCollectorRegistry) async throws -> Void,
        afterShutdown: (ChildProcess) async throws -> Void = { _ in }
    ) async throws {
        let receiver = try await ChildProcess(pythonFixture: "otlp_receiver.py", arguments: receiverArguments)
        try await withStarted(receiver) { receiver in
            let environment = ["OTEL_EXPORTER_OTLP_ENDPOINT": "\(scheme)://127.0.0.1:\(receiver.port)"].merging(variables) { $1 }
            let settings = try OTelEnvironment(environment, defaultServiceName: "exporter-test")
            let metrics = PrometheusCollectorRegistry()
            let exporter = try OTLPSpanExporter(settings: settings, lost: SpanLossCounter(metrics: metrics), logger: Logger(label: "exporter-test"))
            let tracer = ProcessTracer(sampler: settings.sampler, sink: exporter.queue)
            let group = ServiceGroup(services: [exporter], logger: Logger(label: "exporter-test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await body(tracer, receiver, metrics)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            try await afterShutdown(receiver)
        }
    }

    static func lines(_ file: String) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func dropped(_ metrics: PrometheusCollectorRegistry, reason: String) -> Int {
        var buffer: [UInt8] = []
        metrics.emit(into: &buffer)
        let line = String(decoding: buffer, as: UTF8.self).split(separator: "\n").first {
            $0.hasPrefix("otel_spans_dropped_total{reason=\"\(reason)\"}")
        }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) } ?? 0
    }

    @Test func everyFieldDecodes() async throws {
        let file = NSTemporaryDirectory() + "exported-\(UUID().uuidString).jsonl"
        try await Self.withExporter(
            receiverArguments: ["--out", file],
            variables: ["OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"]
        ) { tracer, _, _ in
            let caller = TraceContext.extracted(
                from: [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("tracestate", "vendor=abc")], by: tracer)
            let call = tracer.startSpan("organization.v1.OrganizationService/CheckAdmin", context: caller, ofKind: .server)
            call.attributes["text"] = "é and ü"
            call.attributes["count"] = 42
            call.attributes["negative"] = -7
            call.attributes["flag"] = true
            call.attributes["ratio"] = 0.25
            call.attributes["names"] = ["a", "b"]
            call.attributes["numbers"] = [1, 2, 3] as [Int64]
            call.addEvent(SpanEvent(name: "retry", attributes: ["aws.error_type": "ThrottlingException"]))
            call.recordError(CocoaError(.fileNoSuchFile))
            let linked = TraceContext.extracted(from: [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")], by: tracer)
            call.addLink(SpanLink(context: linked, attributes: [:]))
            call.addLink(SpanLink(context: .topLevel, attributes: [:]))  // names no span: counted
            call.setStatus(SpanStatus(code: .error, message: "unavailable"))
            let child = tracer.startSpan("sqlite checkAdmin", context: call.context, ofKind: .client)
            child.end()
            call.end()
            let arrived = try await eventually(timeout: .seconds(10)) { Self.lines(file).count == 2 }
            #expect(arrived, "\(Self.lines(file))")
        }
        let spans = Self.lines(file)
        let call = try #require(spans.first { $0["name"] as? String == "organization.v1.OrganizationService/CheckAdmin" })
        let child = try #require(spans.first { $0["name"] as? String == "sqlite checkAdmin" })
        #expect(call["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" && call["parent_span_id"] as? String == "00f067aa0ba902b7")
        #expect(
            child["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" && child["parent_span_id"] as? String == call["span_id"] as? String)
        #expect(call["kind"] as? String == "server" && child["kind"] as? String == "client")
        #expect(call["trace_state"] as? String == "vendor=abc" && call["status"] as? Int == 2 && call["status_message"] as? String == "unavailable")
        let start = try #require(call["start_ns"] as? Int)
        let end = try #require(call["end_ns"] as? Int)
        let now = Int(Date().timeIntervalSince1970 * 1e9)
        #expect(start <= end && end <= now && now - start < 60_000_000_000, "start \(start), end \(end), now \(now)")

        let attributes = try #require(call["attributes"] as? [String: Any])
        #expect(attributes["text"] as? String == "é and ü" && attributes["count"] as? Int == 42 && attributes["negative"] as? Int == -7)
        #expect(attributes["flag"] as? Bool == true && attributes["ratio"] as? Double == 0.25)
        #expect(attributes["names"] as? [String] == ["a", "b"] && attributes["numbers"] as? [Int] == [1, 2, 3])

        #expect(call["events"] as? [String] == ["retry", "exception"])
        let eventAttributes = try #require(call["event_attributes"] as? [[String: Any]])
        #expect(eventAttributes.first?["aws.error_type"] as? String == "ThrottlingException")
        #expect(eventAttributes.last?["exception.type"] as? String == "CocoaError")
        let links = try #require(call["links"] as? [[String: Any]])
        #expect(
            links.count == 1 && links[0]["trace_id"] as? String == "0af7651916cd43dd8448eb211c80319c"
                && links[0]["span_id"] as? String == "b7ad6b7169203331")
        #expect(call["dropped_links"] as? Int == 1 && call["dropped_events"] as? Int == 0)

        let resource = try #require(call["resource"] as? [String: Any])
        #expect(resource["service.name"] as? String == "exporter-test" && resource["deployment.environment"] as? String == "test")
        #expect(call["scope"] as? String == "marketplace-services")
    }

    @Test func whatIsQueuedAtShutdownIsSent() async throws {
        let file = NSTemporaryDirectory() + "exported-\(UUID().uuidString).jsonl"
        // No timer within the test and a batch larger than what is queued: only shutdown sends them.
        try await Self.withExporter(receiverArguments: ["--out", file], variables: ["OTEL_BSP_SCHEDULE_DELAY": "600000"]) { tracer, _, _ in
            for index in 0..<300 { tracer.startSpan("step \(index)", context: .topLevel, ofKind: .internal).end() }
            try await Task.sleep(for: .milliseconds(300))
            #expect(Self.lines(file).isEmpty)
        }
        #expect(Self.lines(file).count == 300)
    }

    @Test func anExportUnderWayAtShutdownIsFinished() async throws {
        let file = NSTemporaryDirectory() + "exported-\(UUID().uuidString).jsonl"
        let metrics = Mutex<PrometheusCollectorRegistry?>(nil)
        try await Self.withExporter(receiverArguments: ["--out", file, "--slow-seconds", "1"], variables: ["OTEL_BSP_SCHEDULE_DELAY": "100"]) {
            tracer, receiver, registry in
            metrics.withLock { $0 = registry }
            let answer = try await Curl.post("http://127.0.0.1:\(receiver.port)/_mode", body: "slow")
            #expect(answer.status == 200)
            tracer.startSpan("slow to take", context: .topLevel, ofKind: .internal).end()
            try await Task.sleep(for: .milliseconds(400))  // sent, the collector holding it
        }
        #expect(Self.lines(file).count == 1)
        let registry = try #require(metrics.withLock { $0 })
        #expect(Self.dropped(registry, reason: "export_failed") == 0)
    }

    @Test func aFullBatchIsSentWithoutWaitingForTheTimer() async throws {
        let file = NSTemporaryDirectory() + "exported-\(UUID().uuidString).jsonl"
        try await Self.withExporter(
            receiverArguments: ["--out", file], variables: ["OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50"]
        ) { tracer, _, _ in
            for index in 0..<120 { tracer.startSpan("step \(index)", context: .topLevel, ofKind: .internal).end() }
            // A full batch wakes the exporter, which sends what is queued then; the last spans may
            // wait for the timer (or shutdown).
            let sent = try await eventually(timeout: .seconds(10)) { Self.lines(file).count >= 100 }
            #expect(sent, "\(Self.lines(file).count) spans exported")
        }
        #expect(Self.lines(file).count == 120)
    }

    @Test func aFullQueueAndARefusingCollectorAreCounted() async throws {
        try await Self.withExporter(
            receiverArguments: ["--discard"], variables: ["OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BSP_MAX_QUEUE_SIZE": "10"]
        ) { tracer, receiver, metrics in
            let answer = try await Curl.post("http://127.0.0.1:\(receiver.port)/_mode", body: "fail")
            #expect(answer.status == 200)
            // Ended at once: the queue holds 10 and drops the rest.
            for index in 0..<25 { tracer.startSpan("step \(index)", context: .topLevel, ofKind: .internal).end() }
            #expect(Self.dropped(metrics, reason: "queue_full") == 15)
            // The collector answers 503: the 10 queued are lost, and counted.
            let counted = try await eventually(timeout: .seconds(10)) { Self.dropped(metrics, reason: "export_failed") == 10 }
            #expect(counted, "export_failed \(Self.dropped(metrics, reason: "export_failed"))")
        }
    }

    @Test func anHTTPSCollectorIsTrustedThroughTheCertificatesNamed() async throws {
        let certificates = try await TestCertificates.make()
        let server = ["--tls-cert", certificates.serverCertificatePath, "--tls-key", certificates.serverKeyPath]
        let file = NSTemporaryDirectory() + "exported-\(UUID().uuidString).jsonl"
        // A collector that requires a client certificate: the CA named is trusted, the client's presented.
        try await Self.withExporter(
            receiverArguments: ["--out", file, "--tls-client-ca", certificates.caPath] + server, scheme: "https",
            variables: [
                "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_EXPORTER_OTLP_CERTIFICATE": certificates.caPath,
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": certificates.clientCertificatePath,
                "OTEL_EXPORTER_OTLP_CLIENT_KEY": certificates.clientKeyPath
            ]
        ) { tracer, _, metrics in
            tracer.startSpan("over TLS", context: .topLevel, ofKind: .internal).end()
            let arrived = try await eventually(timeout: .seconds(10)) { Self.lines(file).count == 1 }
            #expect(arrived, "export_failed \(Self.dropped(metrics, reason: "export_failed"))")
        }
        // Without the CA, the system's trust store does not know the collector: the span is counted,
        // not sent, once the export's time is up (the HTTP client tries to connect until then).
        try await Self.withExporter(
            receiverArguments: ["--discard"] + server, scheme: "https",
            variables: ["OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"]
        ) {
            tracer, receiver, metrics in
            tracer.startSpan("over TLS", context: .topLevel, ofKind: .internal).end()
            let counted = try await eventually(timeout: .seconds(10)) { Self.dropped(metrics, reason: "export_failed") == 1 }
            #expect(counted)
        }
        // A certificate file that cannot be read stops the start, saying so.
        let settings = try OTelEnvironment([
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_CERTIFICATE": certificates.directory + "/missing.pem"
        ])
        #expect(throws: (any Error).self) {
            try OTLPSpanExporter(settings: settings, lost: SpanLossCounter(metrics: nil), logger: Logger(label: "exporter-test"))
        }
    }
}
