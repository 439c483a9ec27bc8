import ServiceRuntime
import Testing

@Suite struct ServiceOptionsTests {
    let identity = ServiceIdentity(name: "identity", defaultPort: 7101)

    @Test func defaultsThenEnvironmentThenFlags() throws {
        let defaults = try ServiceOptions.parse([]).settings(service: identity, environment: [:])
        #expect(defaults.port == 7101)
        #expect(defaults.host == "127.0.0.1")
        #expect(defaults.dataDirectory == "./data/identity")
        #expect(defaults.maxBodyBytes == 1 << 20)

        let environment = ["PORT": "9000", "DATA_DIR": "/tmp/x", "MAX_BODY_BYTES": "2048"]
        let fromEnvironment = try ServiceOptions.parse([]).settings(service: identity, environment: environment)
        #expect(fromEnvironment.port == 9000)
        #expect(fromEnvironment.dataDirectory == "/tmp/x")
        #expect(fromEnvironment.maxBodyBytes == 2048)

        let flags = try ServiceOptions.parse(["--port", "9100", "--max-body-bytes", "4096"])
            .settings(service: identity, environment: environment)
        #expect(flags.port == 9100)
        #expect(flags.maxBodyBytes == 4096)
    }

    @Test func unusableValuesAreRefusedWithAReason() throws {
        #expect(throws: (any Error).self) { try ServiceOptions.parse(["--port", "70000"]).settings(service: identity, environment: [:]) }
        #expect(throws: (any Error).self) { try ServiceOptions.parse([]).settings(service: identity, environment: ["PORT": "abc"]) }
        #expect(throws: (any Error).self) { try ServiceOptions.parse(["--tls-cert", "a.pem"]).settings(service: identity, environment: [:]) }
        #expect(throws: (any Error).self) { try ServiceOptions.parse(["--log-level", "loud"]).settings(service: identity, environment: [:]) }
        #expect(throws: (any Error).self) {
            try ServiceOptions.parse(["--trusted-services", "organization=nothex"]).settings(service: identity, environment: [:])
        }
    }
}
