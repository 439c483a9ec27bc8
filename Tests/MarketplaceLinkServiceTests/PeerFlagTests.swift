import Contracts
import Foundation
import MarketplaceLinkService
import OrganizationService
import Testing

/// Where a service finds its peers is its own flag: flag, else environment variable, else the
/// peer's default port on this machine.
@Suite struct PeerFlagTests {
    let credentials = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"]

    @Test func organizationFindsIdentityByFlagThenEnvironmentThenDefault() throws {
        #expect(try OrganizationOptions.parse([]).identityURL(environment: [:]) == LocalServiceURLs.identity)
        #expect(try OrganizationOptions.parse([]).identityURL(environment: ["IDENTITY_URL": "http://id:1"]) == "http://id:1")
        #expect(
            try OrganizationOptions.parse(["--identity-url", "http://flag:2"]).identityURL(environment: ["IDENTITY_URL": "http://id:1"])
                == "http://flag:2")
    }

    @Test func marketplaceLinkFindsItsPeersByFlagThenEnvironmentThenDefault() throws {
        let defaults = try MarketplaceLinkOptions.parse([]).configuration(environment: credentials)
        #expect(defaults.identityURL == LocalServiceURLs.identity)
        #expect(defaults.organizationURL == "http://127.0.0.1:7102")
        #expect(defaults.awsMarketplaceEndpoint == "http://127.0.0.1:7199")

        let environment = credentials.merging(["ORGANIZATION_URL": "http://org:1", "AWS_MARKETPLACE_ENDPOINT": "http://aws:3"]) { $1 }
        let fromEnvironment = try MarketplaceLinkOptions.parse([]).configuration(environment: environment)
        #expect(fromEnvironment.organizationURL == "http://org:1")
        #expect(fromEnvironment.awsMarketplaceEndpoint == "http://aws:3")

        let flags = try MarketplaceLinkOptions.parse(["--organization-url", "http://flag:2", "--identity-url", "http://flag:4"])
            .configuration(environment: environment)
        #expect(flags.organizationURL == "http://flag:2")
        #expect(flags.identityURL == "http://flag:4")
        #expect(flags.awsMarketplaceEndpoint == "http://aws:3")
    }

    @Test func theAWSSecretKeyMayComeAsAFile() throws {
        let path = NSTemporaryDirectory() + "aws-secret-\(UUID().uuidString)"
        try "from-a-file\n".write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try MarketplaceLinkOptions.parse([])
            .configuration(environment: ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY_FILE": path])
        #expect(configuration.credentials.secretAccessKey == "from-a-file")
        #expect(throws: (any Error).self) { try MarketplaceLinkOptions.parse([]).configuration(environment: ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"]) }
    }
}
