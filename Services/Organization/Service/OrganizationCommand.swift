import ArgumentParser
import Contracts
import Foundation
import ServiceRuntime

/// The `organization` executable: the common service flags plus where identity is.
public struct OrganizationCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "organization", abstract: "Organizations, their members and roles, and their billing accounts.")

    @OptionGroup var service: ServiceOptions
    @OptionGroup var organization: OrganizationOptions

    public init() {}

    public func run() async throws {
        let settings = try service.settings(service: OrganizationDefinition.identity)
        await ServiceMain.run(OrganizationDefinition.make(identity: .url(organization.identityURL())), settings: settings)
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
