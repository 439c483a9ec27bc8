import GRDB
import ServiceRuntime

/// The identity service as the runtime runs it. Its RPCs (identity.v1.IdentityService) arrive with its own issue;
/// until then it serves health, probes and metrics over its own database.
public enum IdentityDefinition {
    public static let identity = ServiceIdentity(name: "identity", defaultPort: 7101)

    public static func make() -> ServiceDefinition {
        ServiceDefinition(identity: identity, rpcServices: [], migrator: migrator) { _, _ in }
    }

    /// The schema, one migration per change, applied at start (none of its own yet).
    static var migrator: DatabaseMigrator { DatabaseMigrator() }
}
