import ArgumentParser
import Contracts
import Foundation
import Logging
import ServiceRuntime

/// `console`: the buyer's web pages on port 7100; `healthcheck` asks a running one if it is ready.
/// The shared flags (`--port`, `--service-secret`, ...), its peers and its own; each also as its
/// environment variable.
public struct ConsoleCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "console", abstract: "The web console: AWS Marketplace sign-up, accounts, organizations and billing pages.",
        subcommands: [Serve.self, Healthcheck.self], defaultSubcommand: Serve.self)
    static let identity = ServiceIdentity(name: "console", defaultPort: 7100)

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the console (the default).")

        @OptionGroup var options: ServiceOptions
        @Option(help: "Base URL of identity (IDENTITY_URL).") var identityURL: String?
        @Option(help: "Base URL of organization (ORGANIZATION_URL).") var organizationURL: String?
        @Option(help: "Base URL of marketplace-link (MARKETPLACE_LINK_URL).") var marketplaceLinkURL: String?
        @Option(help: "Where buyers reach the console, e.g. https://console.example.com (PUBLIC_BASE_URL).") var publicBaseURL: String?
        @Option(help: "Comma-separated proxy addresses whose X-Forwarded-For is believed (TRUSTED_PROXIES).") var trustedProxies: String?
        @Option(help: "Benchmarks only: serve /_bench/reference, a static page of this many bytes.") var referencePageBytes: Int?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            let service = try options.settings(service: ConsoleCommand.identity, environment: environment)
            ServiceMain.bootstrapLogging(level: service.logLevel)
            func peer(_ flag: String?, _ variable: String, default local: String) -> String {
                ServiceOptions.resolve(flag, variable, environment: environment) ?? local
            }
            let proxies = ServiceOptions.resolve(trustedProxies, "TRUSTED_PROXIES", environment: environment) ?? ""
            var settings = try ConsoleSettings(
                host: service.host, port: service.port, identityURL: peer(identityURL, "IDENTITY_URL", default: LocalServiceURLs.identity),
                organizationURL: peer(organizationURL, "ORGANIZATION_URL", default: LocalServiceURLs.organization),
                marketplaceLinkURL: peer(marketplaceLinkURL, "MARKETPLACE_LINK_URL", default: LocalServiceURLs.marketplaceLink),
                credential: service.credential,
                publicBaseURL: ServiceOptions.resolve(publicBaseURL, "PUBLIC_BASE_URL", environment: environment)
                    ?? "http://127.0.0.1:\(service.port)",
                trustedProxies: Set(proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }))
            settings.peerTLS = service.peerTLS
            if let bytes = referencePageBytes {
                guard (1...(1 << 20)).contains(bytes) else { throw ValidationError("--reference-page-bytes must be 1 to 1048576") }
                settings.referencePageBytes = bytes
            }
            let logger = Logger(label: "console")
            if settings.credential == nil {
                logger.warning("no SERVICE_SECRET: identity's internal lookups will refuse the console and buyers' addresses are not passed on")
            }
            let tracing = try TraceExport.bootstrap(serviceName: "console", metrics: nil, environment: environment)
            try await ConsoleApp(settings: settings, logger: logger).run(services: tracing.map { [$0] } ?? [])
        }
    }

    struct Healthcheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: ReadinessProbe.abstract)
        @OptionGroup var options: ServiceOptions

        func run() async throws {
            await ReadinessProbe.exit(settings: try options.settings(service: ConsoleCommand.identity))
        }
    }
}
