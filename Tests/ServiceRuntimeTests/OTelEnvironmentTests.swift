import ConnectTransport
import Testing

@testable import ServiceRuntime

/// The `OTEL_*` variables as the specification defines them for traces; values not implemented
/// here are left out with a warning, never a stop.
@Suite struct OTelEnvironmentTests {
    static let collector = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"]

    static func settings(_ variables: [String: String]) throws -> OTelEnvironment {
        try OTelEnvironment(collector.merging(variables) { $1 }, defaultServiceName: "identity")
    }

    @Test func defaultsAreTheSpecs() throws {
        let settings = try Self.settings([:])
        #expect(settings.endpoint == "http://127.0.0.1:4318/v1/traces")
        #expect(settings.sampler == .parentBasedAlwaysOn && settings.propagates)
        #expect(settings.queueSize == 2048 && settings.batchSize == 512)
        #expect(settings.scheduleDelay == .seconds(5) && settings.exportTimeout == .seconds(10))
        #expect(settings.resource.map(\.key) == ["service.name", "telemetry.sdk.language"] && settings.resource[0].value == "identity")
        #expect(settings.headers.isEmpty && settings.warnings.isEmpty)
    }

    @Test func endpointsAndHeaders() throws {
        #expect(
            try Self.settings(["OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318/"]).endpoint
                == "https://collector.example:4318/v1/traces")
        // The traces endpoint is taken as written.
        let traces = try Self.settings(["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9999/custom"])
        #expect(traces.endpoint == "http://127.0.0.1:9999/custom")
        for bad in ["127.0.0.1:4318", "ftp://collector/", "http://"] {
            #expect(throws: OTelEnvironment.InvalidEndpoint.self, "\(bad)") { try Self.settings(["OTEL_EXPORTER_OTLP_ENDPOINT": bad]) }
        }

        let headers = try Self.settings(["OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc, x-tenant = blue,broken"])
        #expect(headers.headers.map(\.name) == ["authorization", "x-tenant"] && headers.headers.map(\.value) == ["Bearer abc", "blue"])
        // A bad entry is named by position only: its text may be a secret.
        #expect(headers.warnings == ["OTEL_EXPORTER_OTLP_HEADERS: an entry is not key=value and is ignored"])
        let tracesOnly = try Self.settings(["OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2"])
        #expect(tracesOnly.headers.map(\.name) == ["b"])
    }

    @Test func theSpecsDefaultPropagatorsKeepTraceContextAndWarnOfBaggage() throws {
        let settings = try Self.settings(["OTEL_PROPAGATORS": "tracecontext,baggage"])
        #expect(settings.propagates)
        #expect(
            settings.warnings == [
                "OTEL_PROPAGATORS: baggage is not implemented here and is ignored; calls carry W3C trace context (tracecontext) only"
            ])
    }

    @Test func propagatorsNotImplementedOrUnknownAreIgnored() throws {
        let onlyB3 = try Self.settings(["OTEL_PROPAGATORS": "b3multi, XRay"])
        // Nothing left: the default, tracecontext.
        #expect(onlyB3.propagates)
        #expect(onlyB3.warnings.count == 2 && onlyB3.warnings.allSatisfy { $0.contains("is not implemented here") })
        let typo = try Self.settings(["OTEL_PROPAGATORS": "TraceContext, w3c"])
        #expect(typo.propagates)
        #expect(typo.warnings == ["OTEL_PROPAGATORS: w3c is not a propagator and is ignored (use tracecontext, or none)"])
        #expect(try !Self.settings(["OTEL_PROPAGATORS": "none"]).propagates)
        #expect(try Self.settings(["OTEL_PROPAGATORS": "none,tracecontext"]).propagates)
    }

    @Test func samplers() throws {
        let remote = try Self.settings(["OTEL_TRACES_SAMPLER": "parentbased_jaeger_remote"])
        #expect(remote.sampler == .parentBasedAlwaysOn && remote.warnings.count == 1)

        let ratio = try Self.settings(["OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"])
        #expect(ratio.sampler == .parentBased(ratio: 0.01) && ratio.warnings.isEmpty)
        #expect(ratio.sampler.description == "parentbased_traceidratio 0.01")

        let badArgument = try Self.settings(["OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1%"])
        #expect(badArgument.sampler == .parentBased(ratio: 1))
        #expect(
            badArgument.warnings == [
                "OTEL_TRACES_SAMPLER_ARG: 1% is not a ratio from 0 to 1 and is ignored; the ratio is 1 (every trace)"
            ])

        let upperCase = try Self.settings(["OTEL_TRACES_SAMPLER": "ALWAYS_OFF"])
        #expect(upperCase.sampler.description == "always_off" && !upperCase.sampler.followsCaller && upperCase.warnings.isEmpty)
        let plain = try Self.settings(["OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"])
        #expect(!plain.sampler.followsCaller && plain.sampler.description == "traceidratio 0.5")
    }

    @Test func grpcAndCompressionAreNotBuiltIn() throws {
        let shared = try Self.settings(["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"])
        #expect(shared.warnings.first?.hasPrefix("OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not built in") == true)
        // The traces variable wins over the shared one.
        #expect(try Self.settings(["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"]).warnings.isEmpty)
        #expect(try Self.settings(["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"]).warnings.count == 1)
        #expect(try Self.settings(["OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"]).warnings.count == 1)
    }

    @Test func queueAndTimesAndResource() throws {
        let settings = try Self.settings([
            "OTEL_BSP_MAX_QUEUE_SIZE": "64", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100", "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2000", "OTEL_BSP_EXPORT_TIMEOUT": "soon",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,service.name=ignored%20here", "OTEL_SERVICE_NAME": "identity-eu"
        ])
        // A batch is never larger than the queue.
        #expect(settings.queueSize == 64 && settings.batchSize == 64)
        #expect(settings.scheduleDelay == .milliseconds(200) && settings.exportTimeout == .seconds(2))
        #expect(settings.warnings == ["OTEL_BSP_EXPORT_TIMEOUT: soon is not a positive whole number and is ignored"])
        #expect(settings.resource.map(\.key) == ["service.name", "deployment.environment", "telemetry.sdk.language"])
        #expect(settings.resource[0].value == "identity-eu" && settings.resource[1].value == "staging")
        // Without OTEL_SERVICE_NAME, the resource's service.name.
        #expect(try Self.settings(["OTEL_RESOURCE_ATTRIBUTES": "service.name=billing%20eu"]).resource[0].value == "billing eu")
    }
}
