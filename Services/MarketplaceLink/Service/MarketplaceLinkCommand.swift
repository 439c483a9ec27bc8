import ArgumentParser
import ServiceRuntime

/// The `marketplace-link` executable: the common service flags plus its own.
public struct MarketplaceLinkCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "marketplace-link", abstract: "AWS Marketplace registrations, contract links and billing status.")

    @OptionGroup var service: ServiceOptions
    @OptionGroup var link: MarketplaceLinkOptions

    public init() {}

    public func run() async throws {
        let settings = try service.settings(service: MarketplaceLinkDefinition.identity)
        let configuration = try link.configuration()
        await ServiceMain.run(MarketplaceLinkDefinition.make(configuration: configuration), settings: settings)
    }
}
