import ConnectTransport
import Foundation

/// The whole system as processes, wired as `Tools/dev/run-local.sh` wires it: identity,
/// organization, marketplace-link, the console, and aws-marketplace-sim posting "Set up your
/// account" to the console. Every service has a secret and trusts the others'; identity's
/// emails and the simulator's offer emails share one maildrop.
public struct ConsoleSystem: Sendable {
    public let identity: ChildProcess
    public let organization: ChildProcess
    public let marketplaceLink: ChildProcess
    public let console: ChildProcess
    public let simulator: SimulatorProcess
    public let maildrop: String
    /// The credential the product's data plane reports usage with (RecordUsage).
    public let usageReporterSecret: String
    public var consoleURL: String { "http://127.0.0.1:\(console.port)" }

    /// Seed for browser tests: one AWS account per scenario, so each can subscribe afresh.
    /// 111111111111 has alice (allowed) and bob (read-only, refused); the others one identity each.
    public static func browserSeed() throws -> String {
        let future = Date().addingTimeInterval(30 * 86400).formatted(.iso8601)
        func offer(_ id: String, _ account: String) -> String {
            """
            {"id": "\(id)", "buyerAccountId": "\(account)", "committedAmountUSD": 120000, "termMonths": 12,
             "dimensions": {"seats": 10, "storage": 500}, "expiresAt": "\(future)"}
            """
        }
        func buyer(_ account: String, _ identities: [(String, String)]) -> String {
            let list = identities.map { #"{"name": "\#($0.0)", "managedPolicies": [\#($0.1)], "actions": []}"# }
            return #"{"accountId": "\#(account)", "email": "buyer-\#(account)@example.com", "identities": [\#(list.joined(separator: ","))]}"#
        }
        let full = #""AWSMarketplaceRead-only", "AWSMarketplaceManageSubscriptions""#
        let json = """
            {"sellerKeys": [{"accessKeyId": "\(SimulatorProcess.sellerAccessKeyID)", "secretAccessKey": "\(SimulatorProcess.sellerSecret)"}],
             "product": {"code": "\(SimulatorProcess.product)", "name": "Cloud Database - Committed Contract"},
             "offers": [\(offer("offer-a", "111111111111")), \(offer("offer-b", "111111111111")), \(offer("offer-c", "222222222222")),
                        \(offer("offer-d", "333333333333")), \(offer("offer-e", "444444444444")), \(offer("offer-f", "555555555555"))],
             "buyers": [\(buyer("111111111111", [("alice", full), ("bob", #""AWSMarketplaceRead-only""#)])),
                        \(buyer("222222222222", [("carol", full)])), \(buyer("333333333333", [("dave", full)])),
                        \(buyer("444444444444", [("erin", full)])), \(buyer("555555555555", [("frank", full)]))]}
            """
        return try temporaryFile(Data(json.utf8))
    }

    /// Starts everything; `consoleArguments` are added to the console's, `environment` to every
    /// service's (the simulator's aside).
    public static func start(
        consoleArguments: [String] = [], consoleRelease: Bool = false, environment: [String: String] = [:]
    ) async throws -> ConsoleSystem {
        let base = NSTemporaryDirectory() + "console-system-\(UUID().uuidString)"
        let maildrop = base + "/maildrop"
        let names = ["identity", "organization", "marketplace-link", "console"]
        let secrets = Dictionary(uniqueKeysWithValues: names.map { ($0, "\($0)-secret-\(UUID().uuidString)") })
        let usageReporterSecret = "usage-reporter-secret-\(UUID().uuidString)"
        let trusted =
            (names.map { "\($0)=\(TrustedServices.digest(ofSecret: secrets[$0]!))" }
            + ["usage-reporter=\(TrustedServices.digest(ofSecret: usageReporterSecret))"]).joined(separator: ",")
        let consolePort = try await freePort()
        let consoleURL = "http://127.0.0.1:\(consolePort)"
        func common(_ name: String) -> [String] {
            ["--port", "0", "--data-dir", "\(base)/\(name)", "--service-secret", secrets[name]!, "--trusted-services", trusted]
        }
        let identity = try await ChildProcess(
            service: "identity",
            arguments: common("identity") + [
                "--scrypt-log-n", "12", "--maildrop-dir", maildrop, "--public-base-url", consoleURL
            ], environment: environment)
        let identityURL = "http://127.0.0.1:\(identity.port)"
        let organization = try await ChildProcess(
            service: "organization", arguments: common("organization") + ["--identity-url", identityURL], environment: environment)
        let organizationURL = "http://127.0.0.1:\(organization.port)"
        let simulatorURL = "http://127.0.0.1:\(try await freePort())"
        let link = try await ChildProcess(
            service: "marketplace-link",
            arguments: common("marketplace-link") + [
                "--identity-url", identityURL, "--organization-url", organizationURL, "--aws-marketplace-endpoint", simulatorURL,
                "--product-code", SimulatorProcess.product, "--sns-trusted-origins", simulatorURL,
                // Hours of a few seconds, so the billing page shows usage sent to AWS within a test.
                "--metered-dimensions", "storage", "--metering-hour-seconds", "4"
            ],
            environment: environment.merging(
                ["AWS_ACCESS_KEY_ID": SimulatorProcess.sellerAccessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.sellerSecret]) { $1 })
        let linkURL = "http://127.0.0.1:\(link.port)"
        let consoleExecutable =
            consoleRelease
            ? ChildProcess.releaseDirectory.appendingPathComponent("console")
            : ChildProcess.productsDirectory.appendingPathComponent("console")
        let console = try await ChildProcess(
            name: "console", executable: consoleExecutable,
            arguments: [
                "--port", "\(consolePort)", "--service-secret", secrets["console"]!, "--identity-url", identityURL,
                "--organization-url", organizationURL, "--marketplace-link-url", linkURL, "--public-base-url", consoleURL
            ] + consoleArguments, environment: environment, readyWithin: .seconds(20), port: ChildProcess.listeningPort)
        let simulator = try await SimulatorProcess.start(
            port: Int(simulatorURL.split(separator: ":").last!)!,
            notificationURL: linkURL + "/marketplace/sns", maildrop: maildrop,
            seedPath: try browserSeed(), fulfillmentURL: consoleURL + "/marketplace/setup", meteringHourSeconds: 4)
        return ConsoleSystem(
            identity: identity, organization: organization, marketplaceLink: link, console: console,
            simulator: simulator, maildrop: maildrop, usageReporterSecret: usageReporterSecret)
    }

    public func stop() async {
        await console.stop()
        await simulator.stop()
        await marketplaceLink.stop()
        await organization.stop()
        await identity.stop()
    }
}
