import ArgumentParser
import Foundation
import Logging
import ServiceRuntime

/// aws-marketplace-sim: flags, or their upper-snake environment variables (a flag wins); serves by
/// default, `healthcheck` asks a running one if it is ready.
public struct SimulatorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "aws-marketplace-sim",
        abstract: "A local stand-in for AWS Marketplace: buyer pages and seller APIs.",
        subcommands: [Serve.self, Healthcheck.self], defaultSubcommand: Serve.self)

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the simulator (the default).")

        @Option(help: "Address to listen on (HOST).") var host: String?
        @Option(help: "Port to listen on (PORT).") var port: Int?
        @Option(help: "Directory of the simulator's database (DATA_DIR).") var dataDir: String?
        @Option(help: "Where 'Set up your account' POSTs the token (FULFILLMENT_URL).") var fulfillmentURL: String?
        @Option(help: "A seed file to load at start (SEED).") var seed: String?
        @Option(help: "Base URL of marketplace-link (MARKETPLACE_LINK_URL).") var marketplaceLinkURL: String?
        @Option(help: "Where SNS notifications are POSTed; empty sends none (NOTIFICATION_URL). Default: <marketplace-link-url>/marketplace/sns.")
        var notificationURL: String?
        @Option(help: "Directory for offer emails (.eml); empty writes none (MAILDROP_DIR).") var maildropDir: String?
        @Option(help: "Log level (LOG_LEVEL).") var logLevel: String?
        @Option(help: "Where buyers' browsers reach the simulator, for the offer emails' links (PUBLIC_URL). Default: where it listens.")
        var publicURL: String?
        @Option(help: "Where the seller's services reach the simulator, for SNS certificate URLs (SERVICE_URL). Default: where it listens.")
        var serviceURL: String?
        @Option(help: "Seconds in a metering hour, for tests; default 3600 (METERING_HOUR_SECONDS).") var meteringHourSeconds: Int?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            func pick(_ flag: String?, _ variable: String) -> String? { ServiceOptions.resolve(flag, variable, environment: environment) }
            // An empty URL or directory turns that output off, so these read the variable even when empty.
            func pickAllowingEmpty(_ flag: String?, _ variable: String) -> String? { flag ?? environment[variable] }
            let levelText = pick(logLevel, "LOG_LEVEL") ?? "info"
            guard let level = Logger.Level(rawValue: levelText) else { throw ValidationError("unknown log level '\(levelText)'") }
            let portText = pick(port.map(String.init), "PORT") ?? "7199"
            guard let port = Int(portText), (0...65535).contains(port) else { throw ValidationError("port '\(portText)' is not 0-65535") }
            ServiceMain.bootstrapLogging(level: level)
            var settings = SimulatorApp.Settings(
                host: pick(host, "HOST") ?? "127.0.0.1",
                port: port,
                dataDirectory: pick(dataDir, "DATA_DIR") ?? "./data/aws-marketplace-sim",
                fulfillmentURL: pick(fulfillmentURL, "FULFILLMENT_URL") ?? "http://127.0.0.1:7100/marketplace/setup",
                seedPath: pick(seed, "SEED"),
                notificationURL: nonEmpty(
                    pickAllowingEmpty(notificationURL, "NOTIFICATION_URL")
                        ?? (pick(marketplaceLinkURL, "MARKETPLACE_LINK_URL") ?? "http://127.0.0.1:7103") + "/marketplace/sns"),
                maildropDirectory: nonEmpty(pickAllowingEmpty(maildropDir, "MAILDROP_DIR") ?? "./data/maildrop"))
            settings.publicURL = pick(publicURL, "PUBLIC_URL").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            settings.serviceURL = pick(serviceURL, "SERVICE_URL").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            let hourText = pick(meteringHourSeconds.map(String.init), "METERING_HOUR_SECONDS") ?? "3600"
            guard let hour = Int(hourText), hour > 0 else { throw ValidationError("--metering-hour-seconds must be a positive number") }
            settings.meteringHourSeconds = hour
            try await SimulatorApp(settings: settings, logger: Logger(label: "aws-marketplace-sim")).run()
        }

        private func nonEmpty(_ value: String) -> String? {
            value.isEmpty ? nil : value
        }
    }

    struct Healthcheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: ReadinessProbe.abstract)
        @Option(help: "Address the simulator listens on (HOST).") var host: String?
        @Option(help: "Port the simulator listens on (PORT).") var port: Int?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            let port = ServiceOptions.resolve(port.map(String.init), "PORT", environment: environment).flatMap(Int.init) ?? 7199
            await ReadinessProbe.exit(host: ServiceOptions.resolve(host, "HOST", environment: environment) ?? "127.0.0.1", port: port, tls: false)
        }
    }
}
