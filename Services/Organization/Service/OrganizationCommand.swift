import ArgumentParser
import Contracts
import Foundation
import ServiceRuntime

/// The `organization` executable: serves by default; `healthcheck` asks a running one if it is ready.
public struct OrganizationCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "organization", abstract: "Organizations, their members and roles, and their billing accounts.",
        subcommands: [Serve.self, Healthcheck.self], defaultSubcommand: Serve.self)

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (the default).")
        @OptionGroup var service: ServiceOptions
        @OptionGroup var organization: OrganizationOptions

        func run() async throws {
            let settings = try service.settings(service: OrganizationDefinition.identity)
            await ServiceMain.run(OrganizationDefinition.make(identity: .url(organization.identityURL())), settings: settings)
        }
    }

    struct Healthcheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: ReadinessProbe.abstract)
        @OptionGroup var service: ServiceOptions

        func run() async throws {
            await ReadinessProbe.exit(settings: try service.settings(service: OrganizationDefinition.identity))
        }
    }
}

/// organization's own flags, beside the ones every service takes.
public struct OrganizationOptions: ParsableArguments, Sendable {
    @Option(help: "Base URL of identity, whose published keys verify access tokens (IDENTITY_URL).") var identityURL: String?

    public init() {}

    /// The flag, else `IDENTITY_URL`, else identity on this machine.
    public func identityURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        ServiceOptions.resolve(identityURL, "IDENTITY_URL", environment: environment) ?? LocalServiceURLs.identity
    }
}
