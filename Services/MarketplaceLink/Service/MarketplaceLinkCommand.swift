import ArgumentParser
import ServiceRuntime

/// The `marketplace-link` executable: serves by default; `healthcheck` asks a running one if it is ready.
public struct MarketplaceLinkCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "marketplace-link", abstract: "AWS Marketplace registrations, contract links and billing status.",
        subcommands: [Serve.self, Healthcheck.self], defaultSubcommand: Serve.self)

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the service (the default).",
            discussion: """
                The AWS Marketplace seller APIs are signed with the credentials in AWS_ACCESS_KEY_ID and \
                AWS_SECRET_ACCESS_KEY (or a file in AWS_SECRET_ACCESS_KEY_FILE), with AWS_SESSION_TOKEN when temporary.
                """)
        @OptionGroup var service: ServiceOptions
        @OptionGroup var link: MarketplaceLinkOptions

        func run() async throws {
            let settings = try service.settings(service: MarketplaceLinkDefinition.identity)
            let configuration = try link.configuration()
            await ServiceMain.run(MarketplaceLinkDefinition.make(configuration: configuration), settings: settings)
        }
    }

    struct Healthcheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: ReadinessProbe.abstract)
        @OptionGroup var service: ServiceOptions

        func run() async throws {
            await ReadinessProbe.exit(settings: try service.settings(service: MarketplaceLinkDefinition.identity))
        }
    }
}
