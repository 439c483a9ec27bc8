import ArgumentParser
import Foundation
import Logging
import ServiceRuntime

/// `console`: the buyer's web pages on port 7100. The shared flags (`--port`, `--identity-url`,
/// `--service-secret`, ...) plus the console's own; each also as its environment variable.
public struct ConsoleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "console", abstract: "The web console: AWS Marketplace sign-up, accounts, organizations and billing pages.")

    @OptionGroup var options: ServiceOptions
    @Option(help: "Where buyers reach the console, e.g. https://console.example.com (PUBLIC_BASE_URL).") var publicBaseURL: String?
    @Option(help: "Comma-separated proxy addresses whose X-Forwarded-For is believed (TRUSTED_PROXIES).") var trustedProxies: String?
    @Option(help: "Benchmarks only: serve /_bench/reference, a static page of this many bytes.") var referencePageBytes: Int?

    public init() {}

    public func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let service = try options.settings(service: ServiceIdentity(name: "console", defaultPort: 7100), environment: environment)
        ServiceMain.bootstrapLogging(level: service.logLevel)
        let proxies = ServiceOptions.resolve(trustedProxies, "TRUSTED_PROXIES", environment: environment) ?? ""
        var settings = try ConsoleSettings(
            host: service.host, port: service.port, identityURL: service.peers.identity, organizationURL: service.peers.organization,
            marketplaceLinkURL: service.peers.marketplaceLink, credential: service.credential,
            publicBaseURL: ServiceOptions.resolve(publicBaseURL, "PUBLIC_BASE_URL", environment: environment) ?? "http://127.0.0.1:\(service.port)",
            trustedProxies: Set(proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }))
        if let bytes = referencePageBytes {
            guard (1...(1 << 20)).contains(bytes) else { throw ValidationError("--reference-page-bytes must be 1 to 1048576") }
            settings.referencePageBytes = bytes
        }
        let logger = Logger(label: "console")
        if settings.credential == nil {
            logger.warning("no SERVICE_SECRET: identity's internal lookups will refuse the console and buyers' addresses are not passed on")
        }
        try await ConsoleApp(settings: settings, logger: logger).run()
    }
}
