import AWSMarketplace
import ConnectTransport
import Contracts
import Foundation
import IdentityTestSupport
import Logging
import MarketplaceLinkService
import OrganizationService
import RPCCore
import ServiceRuntime
import TestSupport
import Testing

/// The whole system for the journey: aws-marketplace-sim as a process; identity, organization and
/// marketplace-link in-process on ephemeral ports, trusting each other by service credentials.
final class JourneyHarness: TestFixture {
    let simulator: SimulatorProcess
    let identity: IdentityHarness
    let organization: ServiceHost
    let link: ServiceHost
    /// Calls as the web front and the user would (no credential; a bearer token per call).
    let linkClient: ConnectClient
    let organizationClient: ConnectClient
    /// Calls marketplace-link's internal methods as an operator service would.
    let operatorClient: ConnectClient
    let directory: String
    /// marketplace-link's database (SQLite file or PostgreSQL), to look inside.
    let linkStore: TestDatabase
    static let linkSecret = "link-secret"
    static let operatorSecret = "operator-secret"

    var organizationDatabase: String { directory + "/organization/organization.sqlite" }
    var linkURL: String { "http://127.0.0.1:\(linkPort)" }
    let linkPort: Int
    /// organization's settings with the port it first bound, to start it again after a test stopped it.
    let organizationRestartSettings: ServiceSettings
    var organizationURL: String { "http://127.0.0.1:\(organizationPort)" }
    let organizationPort: Int

    /// marketplace-link trusts the simulator as the SNS host. With `notifications`, the simulator
    /// delivers its SNS messages to marketplace-link; it starts last, so they arrive at once.
    /// With `meteringHour`, marketplace-link meters `meteredDimensions` and both it and the
    /// simulator count hours of that many seconds.
    static func start(notifications: Bool = false, backend: StorageBackend = .sqlite, meteringHour: Int? = nil) async throws -> JourneyHarness {
        let linkStore = try await TestDatabase.start(backend, service: "marketplace-link")
        do {
            return try await start(notifications: notifications, linkStore: linkStore, meteringHour: meteringHour)
        } catch {
            await linkStore.stop()
            throw error
        }
    }

    static let meteredDimensions: Set<String> = ["compute", "storage"]

    private static func start(notifications: Bool, linkStore: TestDatabase, meteringHour: Int?) async throws -> JourneyHarness {
        let secrets = ["marketplace-link": linkSecret, "operator": operatorSecret]
        let digest = TrustedServices.digest(ofSecret:)
        let simulatorURL = "http://127.0.0.1:\(try await freePort())"
        let identity = try await IdentityHarness.start()
        var logger = Logger(label: "journey-test")
        logger.logLevel = .critical
        let base = NSTemporaryDirectory() + "journey-\(UUID().uuidString)"

        let organizationSettings = try ServiceOptions.parse([
            "--port", "0", "--data-dir", base + "/organization",
            "--service-secret", IdentityHarness.organizationSecret,
            "--trusted-services", "marketplace-link=\(digest(secrets["marketplace-link"]!))"
        ]).settings(service: OrganizationDefinition.identity, environment: [:])
        let organization = try ServiceHost(
            definition: OrganizationDefinition.make(identity: .url(identity.url)), settings: organizationSettings, logger: logger)
        let organizationPort = try await organization.start().port!
        var restartSettings = organizationSettings
        restartSettings.port = organizationPort

        let linkSettings = try ServiceOptions.parse(
            ["--port", "0"] + linkStore.serviceArguments + [
                "--service-secret", secrets["marketplace-link"]!, "--trusted-services", "operator=\(digest(secrets["operator"]!))"
            ]
        ).settings(service: MarketplaceLinkDefinition.identity, environment: [:])
        var configuration = MarketplaceLinkConfiguration(
            productCode: SimulatorProcess.product, awsRegion: "us-east-1",
            credentials: AWSCredentials(accessKeyID: SimulatorProcess.sellerAccessKeyID, secretAccessKey: SimulatorProcess.sellerSecret))
        configuration.snsTrustedOrigins = [simulatorURL]
        configuration.identityURL = identity.url
        configuration.organizationURL = "http://127.0.0.1:\(organizationPort)"
        configuration.awsMarketplaceEndpoint = simulatorURL
        if let meteringHour {
            configuration.meteredDimensions = meteredDimensions
            configuration.meteringHourSeconds = meteringHour
        }
        let link = try ServiceHost(definition: MarketplaceLinkDefinition.make(configuration: configuration), settings: linkSettings, logger: logger)
        let linkPort = try await link.start().port!
        let simulator = try await SimulatorProcess.start(
            port: Int(simulatorURL.split(separator: ":").last!)!,
            notificationURL: notifications ? "http://127.0.0.1:\(linkPort)/marketplace/sns" : "", meteringHourSeconds: meteringHour ?? 3600)
        return JourneyHarness(
            simulator: simulator, identity: identity, organization: organization, link: link, directory: base, linkStore: linkStore,
            organizationPort: organizationPort,
            linkPort: linkPort, organizationRestartSettings: restartSettings,
            linkClient: try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(linkPort)")),
            organizationClient: try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(organizationPort)")),
            operatorClient: try ConnectClient(
                configuration: .init(
                    baseURL: "http://127.0.0.1:\(linkPort)",
                    credential: ServiceCredential(serviceName: "operator", secret: secrets["operator"]!))))
    }

    private init(
        simulator: SimulatorProcess, identity: IdentityHarness, organization: ServiceHost, link: ServiceHost, directory: String,
        linkStore: TestDatabase,
        organizationPort: Int, linkPort: Int, organizationRestartSettings: ServiceSettings, linkClient: ConnectClient,
        organizationClient: ConnectClient, operatorClient: ConnectClient
    ) {
        self.directory = directory
        self.linkStore = linkStore
        self.organizationPort = organizationPort
        self.linkPort = linkPort
        self.organizationRestartSettings = organizationRestartSettings
        self.simulator = simulator
        self.identity = identity
        self.organization = organization
        self.link = link
        self.linkClient = linkClient
        self.organizationClient = organizationClient
        self.operatorClient = operatorClient
    }

    func stop() async {
        await linkClient.close()
        await organizationClient.close()
        await operatorClient.close()
        await link.shutdown(timeout: .seconds(2))
        await organization.shutdown(timeout: .seconds(2))
        await identity.stop()
        await simulator.stop()
        await linkStore.stop()
    }

    /// Starts organization again on its port and data (after `organization.shutdown()`); the caller stops it.
    func startOrganizationAgain() async throws -> ServiceHost {
        var logger = Logger(label: "journey-test")
        logger.logLevel = .critical
        let host = try ServiceHost(
            definition: OrganizationDefinition.make(identity: .url(identity.url)), settings: organizationRestartSettings, logger: logger)
        _ = try await host.start()
        return host
    }

    /// Stops the simulator, waits `down`, and starts it again on its port and data; the caller stops the new one.
    func restartSimulator(after down: Duration, meteringHour: Int) async throws -> SimulatorProcess {
        await simulator.stop()
        try await Task.sleep(for: down)
        return try await SimulatorProcess.start(
            port: simulator.process.port, meteringHourSeconds: meteringHour, directory: simulator.directory)
    }

    /// A new organization whose billing is linked (ACTIVE) to `offer` of `identity`; returns its
    /// admin and the organization.
    func linkedOrganization(identity name: String = "alice", offer: String = "offer-a") async throws -> (LoginResponse, Organization) {
        let (user, organization) = try await adminWithOrganization()
        let registration = try await register(identity: name, offer: offer, bearerToken: user.accessToken)
        let status = try await linkClient.call(
            MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: registration.claim ?? "", organizationId: organization.id),
            options: .init(bearerToken: user.accessToken))
        try #require(status.state == .active, "the bind left the link \(String(describing: status.state))")
        return (user, organization)
    }

    /// A signed-up user who administers a new organization; returns both.
    func adminWithOrganization(_ name: String = "Buyer Co") async throws -> (LoginResponse, Organization) {
        let user = try await identity.signedUpUser()
        let organization = try await organizationClient.call(
            Organizations.createOrganization, CreateOrganizationRequest(name: name),
            options: .init(bearerToken: user.accessToken))
        return (user, organization)
    }

    /// The simulator's "Set up your account" for `identity` and `offer`, accepted by marketplace-link.
    func register(identity name: String = "alice", offer: String = "offer-a", bearerToken: String? = nil) async throws -> AcceptRegistrationResponse {
        let token = try await simulator.subscribeAndSetUp(identity: name, offer: offer)
        return try await linkClient.call(
            MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token),
            options: .init(bearerToken: bearerToken))
    }
}
