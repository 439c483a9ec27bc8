import GRDB
import ServiceRuntime

/// The organization service as the runtime runs it. Its RPCs (organization.v1.OrganizationService) arrive with its own issue;
/// until then it serves health, probes and metrics over its own database.
public enum OrganizationDefinition {
    public static let identity = ServiceIdentity(name: "organization", defaultPort: 7102)

    public static func make() -> ServiceDefinition {
        ServiceDefinition(identity: identity, rpcServices: [], migrator: migrator) { _, _ in }
    }

    /// The schema, one migration per change, applied at start (none of its own yet).
    static var migrator: DatabaseMigrator { DatabaseMigrator() }
}
