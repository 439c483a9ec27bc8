import ConnectTransport
import Foundation
import ServiceRuntime

/// The organization service as the runtime runs it: its schema and its handlers. It verifies
/// access tokens with identity's published keys (`--identity-url`).
public enum OrganizationDefinition {
    public static let identity = ServiceIdentity(name: "organization", defaultPort: 7102)

    /// `identity` is where identity publishes its keys; `now` is the clock the rules read (tests
    /// move it).
    public static func make(identity upstream: Upstream, now: @escaping @Sendable () -> Date = { Date() }) -> ServiceDefinition {
        ServiceDefinition(
            identity: identity, rpcServices: ["organization.v1.OrganizationService"],
            migrator: OrganizationMigrations.migrator, postgresMigrations: PostgresOrganizationStorage.migrations
        ) { setup, resources in
            let identityClient = try ConnectClient(upstream: upstream, credential: resources.settings.credential, tls: resources.settings.peerTLS)
            let authenticator = AccessTokenAuthenticator(identity: identityClient, now: now, logger: resources.logger)
            let storage: any OrganizationStorage
            switch resources.database {
            case .sqlite(let pool): storage = SQLiteOrganizationStorage(pool: pool)
            case .postgres(let database): storage = PostgresOrganizationStorage(database: database)
            }
            let directory = OrganizationDirectory(storage: storage, identity: identityClient, now: now)
            if case .postgres(let database) = resources.database {
                // Replicas share the database: a membership change on one clears every replica's role cache.
                setup.backgroundWork.append(database.listener(channel: PostgresOrganizationStorage.rolesChannel) { directory.rolesChanged() })
            }
            OrganizationHandlers(directory: directory, authenticator: authenticator).register(in: &setup.router)
        }
    }
}
