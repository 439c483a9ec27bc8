import ArgumentParser
import ServiceRuntime

/// The `identity` executable: serves by default; `rotate-signing-keys` rotates the access-token keys.
public struct IdentityCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "identity", abstract: "Users, email verification, sessions and access tokens.",
        subcommands: [Serve.self, RotateSigningKeys.self, Healthcheck.self], defaultSubcommand: Serve.self)

    public init() {}

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (the default).")
        @OptionGroup var service: ServiceOptions
        @OptionGroup var identity: IdentityOptions

        func run() async throws {
            let settings = try service.settings(service: IdentityDefinition.identity)
            let configuration = try identity.configuration(settings: settings)
            await ServiceMain.run(IdentityDefinition.make(configuration: configuration), settings: settings)
        }
    }

    struct Healthcheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: ReadinessProbe.abstract)
        @OptionGroup var service: ServiceOptions

        func run() async throws {
            await ReadinessProbe.exit(settings: try service.settings(service: IdentityDefinition.identity))
        }
    }

    struct RotateSigningKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new access-token signing key current; the old one stays published until its tokens expire.")
        @OptionGroup var service: ServiceOptions

        func run() async throws {
            let settings = try service.settings(service: IdentityDefinition.identity)
            let keyID = try await IdentityDefinition.rotateSigningKeys(settings: settings)
            print("new signing key \(keyID) is current; a running identity uses it within 5 seconds")
        }
    }
}
