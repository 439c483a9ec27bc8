import AWSMarketplace
import ArgumentParser
import ConnectTransport
import Contracts
import Foundation
import GRDB
import RPCCore
import ServiceRuntime

/// marketplace-link's own flags, beside the ones every service takes.
public struct MarketplaceLinkOptions: ParsableArguments, Sendable {
    @Option(help: "The committed-contract product code (PRODUCT_CODE).") var productCode: String?
    @Option(help: "AWS region of the Marketplace APIs; default us-east-1 (AWS_REGION).") var awsRegion: String?
    @Option(help: "The SNS topic of the product's subscription events; default AWS Marketplace's topic for the product (SNS_TOPIC_ARN).")
    var snsTopicArn: String?
    @Option(
        help:
            "Comma-separated scheme://host[:port] trusted to serve SNS certificates and SubscribeURLs; default https://sns.us-east-1.amazonaws.com (SNS_TRUSTED_ORIGINS)."
    )
    var snsTrustedOrigins: String?
    @Option(help: "Base URL of identity (IDENTITY_URL).") var identityURL: String?
    @Option(help: "Base URL of organization (ORGANIZATION_URL).") var organizationURL: String?
    @Option(help: "AWS Marketplace API endpoint (AWS_MARKETPLACE_ENDPOINT).") var awsMarketplaceEndpoint: String?
    @Option(
        help:
            "AcceptRegistration calls one client address may make a minute, per replica (each costs AWS quota); default 20 (REGISTRATIONS_PER_MINUTE)."
    )
    var registrationsPerMinute: Int?
    @Option(
        help:
            "Comma-separated usage dimensions of the product that RecordUsage takes, each also in the buyer's contract; default none (METERED_DIMENSIONS)."
    )
    var meteredDimensions: String?
    @Option(help: "Seconds in a metering hour; 3600, shorter only for tests (METERING_HOUR_SECONDS).") var meteringHourSeconds: Int?

    public init() {}

    /// Resolves the flags; AWS credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    /// (or the file AWS_SECRET_ACCESS_KEY_FILE names).
    public func configuration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> MarketplaceLinkConfiguration {
        var environment = environment
        // The secret key may come as a file (AWS_SECRET_ACCESS_KEY_FILE), like every secret.
        environment["AWS_SECRET_ACCESS_KEY"] = try ServiceOptions.resolveSecret(nil, "AWS_SECRET_ACCESS_KEY", environment: environment)
        guard let credentials = AWSCredentials.fromEnvironment(environment) else {
            throw ConfigurationError(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY_FILE): marketplace-link calls the AWS Marketplace seller APIs"
            )
        }
        var configuration = MarketplaceLinkConfiguration(
            productCode: ServiceOptions.resolve(productCode, "PRODUCT_CODE", environment: environment) ?? "prod-committed-demo",
            awsRegion: ServiceOptions.resolve(awsRegion, "AWS_REGION", environment: environment) ?? "us-east-1",
            credentials: credentials)
        if let url = ServiceOptions.resolve(identityURL, "IDENTITY_URL", environment: environment) {
            configuration.identityURL = url
        }
        if let url = ServiceOptions.resolve(organizationURL, "ORGANIZATION_URL", environment: environment) {
            configuration.organizationURL = url
        }
        if let url = ServiceOptions.resolve(awsMarketplaceEndpoint, "AWS_MARKETPLACE_ENDPOINT", environment: environment) {
            configuration.awsMarketplaceEndpoint = url
        }
        if let text = ServiceOptions.resolve(registrationsPerMinute.map(String.init), "REGISTRATIONS_PER_MINUTE", environment: environment) {
            guard let limit = Int(text), limit > 0 else { throw ConfigurationError("--registrations-per-minute must be a positive number") }
            configuration.registrationsPerMinute = limit
        }
        if let text = ServiceOptions.resolve(meteredDimensions, "METERED_DIMENSIONS", environment: environment) {
            let dimensions = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard dimensions.allSatisfy({ (1...255).contains($0.utf8.count) }) else {
                throw ConfigurationError("--metered-dimensions: each dimension is 1 to 255 characters")
            }
            configuration.meteredDimensions = Set(dimensions)
        }
        if let text = ServiceOptions.resolve(meteringHourSeconds.map(String.init), "METERING_HOUR_SECONDS", environment: environment) {
            guard let seconds = Int(text), (2...3600).contains(seconds) else {
                throw ConfigurationError("--metering-hour-seconds must be 2 to 3600")
            }
            configuration.meteringHourSeconds = seconds
        }
        if let topic = ServiceOptions.resolve(snsTopicArn, "SNS_TOPIC_ARN", environment: environment) {
            configuration.snsTopicArn = topic
        }
        if let origins = ServiceOptions.resolve(snsTrustedOrigins, "SNS_TRUSTED_ORIGINS", environment: environment) {
            configuration.snsTrustedOrigins = origins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return configuration
    }
}

/// marketplace-link's configuration, resolved.
public struct MarketplaceLinkConfiguration: Sendable {
    public var productCode: String
    public var awsRegion: String
    public var credentials: AWSCredentials
    /// Where identity (access-token keys, user lookups) and organization (admin checks, billing
    /// accounts) answer.
    public var identityURL = LocalServiceURLs.identity
    public var organizationURL = LocalServiceURLs.organization
    /// The AWS Marketplace seller APIs (the simulator when run locally).
    public var awsMarketplaceEndpoint = LocalServiceURLs.awsMarketplaceSimulator
    /// AcceptRegistration calls per client address a minute, counted by each replica.
    public var registrationsPerMinute = 20
    /// The SNS topic AWS Marketplace publishes the product's subscription events on.
    public var snsTopicArn: String
    /// Where SNS certificates and SubscribeURLs may come from.
    public var snsTrustedOrigins = ["https://sns.us-east-1.amazonaws.com"]
    /// The usage dimensions RecordUsage takes (none: metering is off).
    public var meteredDimensions: Set<String> = []
    /// Seconds in a metering hour: 3600; tests shorten it, with the same rules.
    public var meteringHourSeconds = 3600
    /// The clock the rules read; tests move it.
    public var now: @Sendable () -> Date = { Date() }

    public init(productCode: String, awsRegion: String, credentials: AWSCredentials) {
        self.productCode = productCode
        self.awsRegion = awsRegion
        self.credentials = credentials
        // AWS Marketplace's SaaS topics all live in its us-east-1 account.
        snsTopicArn = MarketplaceSubscriptionEvent.topicArn(productCode: productCode)
    }
}

/// marketplace-link as the runtime runs it: its schema, its handlers, its SNS endpoint, the link
/// saga runner and the entitlement refresher.
public enum MarketplaceLinkDefinition {
    public static let identity = ServiceIdentity(name: "marketplace-link", defaultPort: 7103)

    public static func make(configuration: MarketplaceLinkConfiguration) -> ServiceDefinition {
        ServiceDefinition(
            identity: identity, rpcServices: ["marketplacelink.v1.MarketplaceLinkService"],
            migrator: MarketplaceLinkMigrations.migrator, postgresMigrations: PostgresLinkStorage.migrations
        ) { setup, resources in
            let settings = resources.settings
            let awsEndpoint = configuration.awsMarketplaceEndpoint
            guard let endpoint = URL(string: awsEndpoint.hasSuffix("/") ? awsEndpoint : awsEndpoint + "/") else {
                throw ConfigurationError("--aws-marketplace-endpoint must be a URL")
            }
            let transport = AWSJSONClient(
                configuration: .init(
                    endpoint: endpoint, region: configuration.awsRegion,
                    credentials: configuration.credentials), logger: resources.logger)
            let metering = MarketplaceMeteringClient(transport: transport)
            let entitlements = MarketplaceEntitlementClient(transport: transport)
            let identityClient = try ConnectClient(upstream: .url(configuration.identityURL), credential: settings.credential, tls: settings.peerTLS)
            let organizationClient = try ConnectClient(
                upstream: .url(configuration.organizationURL), credential: settings.credential, tls: settings.peerTLS)
            let authenticator = AccessTokenAuthenticator(identity: identityClient, now: configuration.now, logger: resources.logger)
            let storage: any LinkStorage
            switch resources.database {
            case .sqlite(let pool): storage = try SQLiteLinkStorage(pool: pool)
            case .postgres(let database): storage = PostgresLinkStorage(database: database)
            }
            let registrations = Registrations(
                configuration: .init(productCode: configuration.productCode, registrationsPerMinute: configuration.registrationsPerMinute),
                storage: storage,
                metering: metering,
                entitlements: entitlements, organization: organizationClient, now: configuration.now,
                logger: resources.logger)
            let statusPage = BillingStatusPage(
                storage: storage, organization: organizationClient, authenticator: authenticator, render: LinkStore.Link.encodedStatus)
            let saga = BindingSaga(
                storage: storage, organization: organizationClient, authenticator: authenticator, linksWritten: statusPage.invalidate,
                now: configuration.now, logger: resources.logger)
            let meter = UsageMeter(
                storage: storage, metering: metering,
                settings: MeteringSettings(dimensions: configuration.meteredDimensions, hourSeconds: configuration.meteringHourSeconds),
                metrics: resources.metrics, now: configuration.now, logger: resources.logger)
            MarketplaceLinkHandlers(registrations: registrations, saga: saga, statusPage: statusPage, meter: meter, now: configuration.now)
                .register(in: &setup.router)
            setup.backgroundWork.append(saga.runner())
            setup.backgroundWork.append(meter.runner())
            if case .postgres(let database) = resources.database {
                // Replicas share the database: a link written on one clears every replica's billing pages.
                setup.backgroundWork.append(database.listener(channel: PostgresLinkStorage.linksChannel) { statusPage.invalidate() })
            }

            var receiverConfiguration = SNSReceiver.Configuration(
                topicArns: [configuration.snsTopicArn],
                trustedOrigins: configuration.snsTrustedOrigins)
            receiverConfiguration.now = configuration.now
            let receiver: SNSReceiver
            do {
                receiver = try SNSReceiver(configuration: receiverConfiguration)
            } catch {
                throw ConfigurationError("--sns-trusted-origins: \(error)")
            }
            let events = SubscriptionEvents(
                productCode: configuration.productCode, storage: storage, receiver: receiver,
                entitlements: entitlements, saga: saga,
                now: configuration.now, logger: resources.logger)
            setup.plainRoutes[SNSEndpoint.path] =
                SNSEndpoint(events: events, refusals: RateLimitedLog(logger: resources.logger), metrics: resources.metrics).route
            setup.backgroundWork.append(events.runner())
        }
    }
}
