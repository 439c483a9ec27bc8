import Testing

@testable import ServiceRuntime

/// The `OTEL_*` values swift-otel would stop the process for are left out with a warning; the
/// rest reach it as written (lower-cased where the spec allows any case).
@Suite struct OTelEnvironmentTests {
    @Test func theSpecsDefaultPropagatorsKeepTraceContextAndWarnOfBaggage() {
        let settings = OTelEnvironment(["OTEL_PROPAGATORS": "tracecontext,baggage"])
        #expect(settings.overrides == ["OTEL_PROPAGATORS": "tracecontext"])
        #expect(
            settings.warnings == [
                "OTEL_PROPAGATORS: baggage is not implemented here and is ignored; calls carry W3C trace context (tracecontext) only"
            ])
    }

    @Test func propagatorsNotImplementedOrUnknownAreIgnored() {
        let onlyB3 = OTelEnvironment(["OTEL_PROPAGATORS": "b3multi, XRay"])
        // Nothing left: the variable is unset, and swift-otel's default (tracecontext) applies.
        #expect(onlyB3.overrides == ["OTEL_PROPAGATORS": String?.none])
        #expect(onlyB3.warnings.count == 2 && onlyB3.warnings.allSatisfy { $0.contains("is not implemented here") })
        let typo = OTelEnvironment(["OTEL_PROPAGATORS": "TraceContext, w3c"])
        #expect(typo.overrides == ["OTEL_PROPAGATORS": "tracecontext"])
        #expect(typo.warnings == ["OTEL_PROPAGATORS: w3c is not a propagator and is ignored (use tracecontext, or none)"])
        #expect(OTelEnvironment(["OTEL_PROPAGATORS": "none"]) == OTelEnvironment([:]))
        #expect(OTelEnvironment(["OTEL_PROPAGATORS": "tracecontext"]).overrides.isEmpty)
    }

    @Test func samplersNotImplementedAreIgnoredAndRatiosDrawnHere() {
        let remote = OTelEnvironment(["OTEL_TRACES_SAMPLER": "parentbased_jaeger_remote"])
        #expect(remote.overrides == ["OTEL_TRACES_SAMPLER": String?.none])
        #expect(remote.sampler == "parentbased_always_on" && remote.warnings.count == 1)

        let ratio = OTelEnvironment(["OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"])
        #expect(ratio.rootRatio == 0.01 && ratio.overrides == ["OTEL_TRACES_SAMPLER": "parentbased_always_on"])
        #expect(ratio.warnings.isEmpty && ratio.sampler == "parentbased_traceidratio 0.01")

        let badArgument = OTelEnvironment(["OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1%"])
        #expect(badArgument.rootRatio == 1)
        #expect(
            badArgument.warnings == [
                "OTEL_TRACES_SAMPLER_ARG: 1% is not a ratio from 0 to 1 and is ignored; every trace this process starts is recorded"
            ])

        let upperCase = OTelEnvironment(["OTEL_TRACES_SAMPLER": "ALWAYS_OFF"])
        #expect(upperCase.overrides == ["OTEL_TRACES_SAMPLER": "always_off"] && upperCase.warnings.isEmpty)
        #expect(OTelEnvironment(["OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"]).overrides.isEmpty)
    }

    @Test func grpcExportIsReplacedByHTTPProtobuf() {
        let shared = OTelEnvironment(["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"])
        #expect(shared.overrides == ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"])
        #expect(shared.warnings.first?.hasPrefix("OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not built in") == true)
        // The traces variable wins over the shared one, as swift-otel reads them.
        #expect(OTelEnvironment(["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"]).overrides.isEmpty)
        #expect(OTelEnvironment(["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"]).warnings.count == 1)
    }
}
