import ArgumentParser
import AWSMarketplaceSimulator
import Foundation
import Logging

/// aws-marketplace-sim: flags, or their upper-snake environment variables.
@main
struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "aws-marketplace-sim",
                                                    abstract: "A local stand-in for AWS Marketplace: buyer pages and seller APIs.")

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

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let level = Logger.Level(rawValue: logLevel ?? environment["LOG_LEVEL"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let settings = SimulatorApp.Settings(
            host: host ?? environment["HOST"] ?? "127.0.0.1",
            port: port ?? environment["PORT"].flatMap(Int.init) ?? 7199,
            dataDirectory: dataDir ?? environment["DATA_DIR"] ?? "./data/aws-marketplace-sim",
            fulfillmentURL: fulfillmentURL ?? environment["FULFILLMENT_URL"] ?? "http://127.0.0.1:7100/marketplace/setup",
            seedPath: seed ?? environment["SEED"],
            notificationURL: nonEmpty(notificationURL ?? environment["NOTIFICATION_URL"]
                ?? (marketplaceLinkURL ?? environment["MARKETPLACE_LINK_URL"] ?? "http://127.0.0.1:7103") + "/marketplace/sns"),
            maildropDirectory: nonEmpty(maildropDir ?? environment["MAILDROP_DIR"] ?? "./data/maildrop"))
        try await SimulatorApp(settings: settings, logger: Logger(label: "aws-marketplace-sim")).run()
    }
}

private func nonEmpty(_ value: String) -> String? {
    value.isEmpty ? nil : value
}
