import GRDB
import ServiceRuntime

/// The marketplace-link service as the runtime runs it. Its RPCs (marketplacelink.v1.MarketplaceLinkService) arrive with its own issue;
/// until then it serves health, probes and metrics over its own database.
public enum MarketplaceLinkDefinition {
    public static let identity = ServiceIdentity(name: "marketplace-link", defaultPort: 7103)

    public static func make() -> ServiceDefinition {
        ServiceDefinition(identity: identity, rpcServices: [], migrator: migrator) { _, _ in }
    }

    /// The schema, one migration per change, applied at start (none of its own yet).
    static var migrator: DatabaseMigrator { DatabaseMigrator() }
}
