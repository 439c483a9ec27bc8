import Foundation
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

/// Secrets as files (`<NAME>_FILE`), as Compose and Kubernetes mount them.
@Suite struct SecretFileTests {
    let identity = ServiceIdentity(name: "identity", defaultPort: 7101)

    private func file(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "secret-\(UUID().uuidString)"
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aSecretComesFromTheFileItsVariableNames() throws {
        let path = try file("s3cret value\n")
        let settings = try ServiceOptions.parse([]).settings(service: identity, environment: ["SERVICE_SECRET_FILE": path])
        #expect(settings.credential?.serviceName == "identity" && settings.credential?.secret == "s3cret value")
        #expect(try ServiceOptions.resolveSecret(nil, "SMTP_URL", environment: ["SMTP_URL_FILE": path]) == "s3cret value")
        // The flag still wins; without any, there is no secret.
        #expect(try ServiceOptions.resolveSecret("flag", "SMTP_URL", environment: [:]) == "flag")
        #expect(try ServiceOptions.resolveSecret(nil, "SMTP_URL", environment: [:]) == nil)
    }

    @Test func twoWaysAtOnceAnUnreadableOrEmptyFileAreRefusedWithoutShowingTheSecret() throws {
        let path = try file("do-not-print-me")
        for environment in [
            ["SERVICE_SECRET": "do-not-print-me", "SERVICE_SECRET_FILE": path],
            ["SERVICE_SECRET_FILE": "/nonexistent/secret"],
            ["SERVICE_SECRET_FILE": try file("\n")]
        ] {
            do {
                _ = try ServiceOptions.parse([]).settings(service: identity, environment: environment)
                Issue.record("accepted \(environment.keys.sorted())")
            } catch {
                #expect("\(error)".contains("SERVICE_SECRET"))
                #expect(!"\(error)".contains("do-not-print-me"))
            }
        }
    }

    @Test func theDatabaseURLMayComeAsAFileAndItsPasswordIsNeverShown() throws {
        let path = try file("postgres://identity:pa%24%24word@db.internal:5433/identity?sslmode=require\n")
        let settings = try ServiceOptions.parse([]).settings(service: identity, environment: ["DATABASE_URL_FILE": path])
        guard case .postgres(let configuration, let redacted) = settings.database else {
            Issue.record("not PostgreSQL: \(settings.database)")
            return
        }
        #expect(configuration.host == "db.internal" && configuration.port == 5433 && configuration.database == "identity")
        #expect(configuration.username == "identity" && configuration.password == "pa$$word")
        #expect(!redacted.contains("pa%24%24word") && !redacted.contains("pa$$word") && redacted.contains("db.internal"))
        #expect(!settings.database.description(dataDirectory: "/data").contains("word"))
        // The default is SQLite in the data directory.
        guard case .sqlite = try ServiceOptions.parse([]).settings(service: identity, environment: [:]).database else {
            Issue.record("the default is not SQLite")
            return
        }
        // A bad URL is refused, saying what is wrong and not the password.
        for bad in ["mysql://u:secretpw@h/d", "postgres://u:secretpw@h/d?sslmode=maybe", "postgres://u:secretpw@h/"] {
            do {
                _ = try ServiceOptions.parse(["--database-url", bad]).settings(service: identity, environment: [:])
                Issue.record("accepted \(bad)")
            } catch {
                #expect(!"\(error)".contains("secretpw"), "\(error)")
            }
        }
    }
}
