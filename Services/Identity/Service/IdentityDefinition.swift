import Contracts
import Foundation
import GRDB
import Logging
import NIOPosix
import ServiceRuntime

/// The identity service as the runtime runs it: its schema, its handlers and its outbox sender.
public enum IdentityDefinition {
    public static let identity = ServiceIdentity(name: "identity", defaultPort: 7101)

    public static func make(configuration: IdentityConfiguration) -> ServiceDefinition {
        var definition = ServiceDefinition(
            identity: identity, rpcServices: ["identity.v1.IdentityService"], migrator: IdentityMigrations.migrator,
            postgresMigrations: PostgresIdentityStorage.migrations
        ) {
            setup, resources in
            let storage: any IdentityStorage
            switch resources.database {
            case .sqlite(let pool): storage = try SQLiteIdentityStorage(pool: pool)
            case .postgres(let database): storage = PostgresIdentityStorage(database: database)
            }
            let keys = SigningKeyRing(storage: storage, tokenLifetime: configuration.sessions.accessTokenLifetime, now: configuration.now)
            let wake = WakeSignal()
            let accounts = Accounts(
                storage: storage,
                hasher: PasswordHasher(parameters: configuration.scrypt, concurrency: configuration.hashingThreads),
                keys: keys,
                composer: EmailComposer(publicBaseURL: configuration.publicBaseURL, from: configuration.mailFrom),
                outboxWake: wake, sessions: configuration.sessions, throttle: configuration.throttle,
                now: configuration.now, logger: resources.logger)
            IdentityHandlers(accounts: accounts).register(in: &setup.router)
            if case .postgres(let database) = resources.database {
                // Replicas share the database: a user written on one clears every replica's user cache.
                setup.backgroundWork.append(database.listener(channel: PostgresIdentityStorage.usersChannel) { accounts.usersChanged() })
            }
            let logger = resources.logger
            setup.startup.append {
                try await keys.prepare()
                let duplicates = try await storage.duplicateAccounts()
                if !duplicates.isEmpty {
                    logger.warning(
                        "accounts share a mailbox with an older account (addresses differing only in case); they cannot sign in until merged or removed",
                        metadata: [
                            "count": "\(duplicates.count)",
                            "accounts": "\(duplicates.map { "\($0.id) (\($0.email), kept \($0.keptID))" }.joined(separator: "; "))"
                        ])
                }
            }

            let transport: any EmailTransport =
                switch configuration.mail {
                case .maildrop(let directory): MaildropTransport(maildrop: Maildrop(directory: directory, domain: "identity.local"))
                case .smtp(let settings): SMTPTransport(settings: settings, group: MultiThreadedEventLoopGroup.singleton)
                }
            let sender = OutboxSender(
                storage: storage, transport: transport, from: configuration.mailFrom, wake: wake,
                now: configuration.now, logger: resources.logger, prepare: accounts.preparePasswordResets)
            setup.backgroundWork.append(sender.runner())
            resources.logger.info(
                "identity configured",
                metadata: [
                    "email": "\(configuration.mailDescription)", "public_base_url": "\(configuration.publicBaseURL)",
                    "scrypt": "\(configuration.scrypt)", "hashing_threads": "\(configuration.hashingThreads)"
                ])
        }
        definition.databaseHoldsSecrets = true
        return definition
    }

    /// Retires the current signing key and makes a new one (the `rotate-signing-keys` command).
    /// Tokens signed with the old key keep verifying until they expire.
    public static func rotateSigningKeys(settings: ServiceSettings) async throws -> String {
        let lifetime = SessionRules().accessTokenLifetime
        switch settings.database {
        case .sqlite:
            let database = try ServiceDatabase.sqlite(
                directory: settings.dataDirectory, name: identity.name, migrator: IdentityMigrations.migrator, holdsSecrets: true)
            return try await SigningKeyRing.rotate(storage: try SQLiteIdentityStorage(pool: try database.pool), tokenLifetime: lifetime, at: Date())
        case .postgres(let configuration, _):
            let database = PostgresBackend(configuration: configuration, logger: Logger(label: "identity"))
            do {
                try await database.migrate(service: identity.name, migrations: PostgresIdentityStorage.migrations)
                let keyID = try await SigningKeyRing.rotate(storage: PostgresIdentityStorage(database: database), tokenLifetime: lifetime, at: Date())
                await database.close()
                return keyID
            } catch {
                await database.close()
                throw error
            }
        }
    }

}
