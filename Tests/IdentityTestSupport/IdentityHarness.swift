import ConnectTransport
import Contracts
import Foundation
import GRDB
import IdentityService
import Logging
import RPCCore
import ServiceRuntime
import Synchronization
import TestSupport

/// Real time plus an offset the tests move forward, to expire tokens, sessions and locks without waiting.
public final class TestClock: Sendable {
    public init() {}
    private let offset = Mutex<TimeInterval>(0)
    public var now: Date { Date() + offset.withLock { $0 } }
    public func advance(by seconds: TimeInterval) { offset.withLock { $0 += seconds } }
    public var function: @Sendable () -> Date { { self.now } }
}

/// identity run in-process with its real database, a maildrop and a test clock: on an ephemeral
/// port, or with `listening: false` called without a socket (`Upstream.inProcess`), for rule
/// tests where the wire is not what is tested. scrypt runs at N=2^10 here to keep tests quick;
/// the default cost has tests of its own.
public final class IdentityHarness: TestFixture {
    public static let callerSecret = "test-caller-secret"
    /// The secret organization presents to identity in tests (LookupUsers), which identity trusts.
    public static let organizationSecret = "test-organization-secret"
    public let host: ServiceHost
    public let directory: String
    /// identity's database (SQLite file or PostgreSQL), to look inside with plain SQL.
    public let store: TestDatabase
    /// Whether `stop` stops the store: not when the test gave the directory (it starts identity again on it).
    private let ownsStore: Bool
    public let clock: TestClock
    /// Calls as an end user would (no service credential).
    public let client: ConnectClient
    /// Calls as a trusted service would.
    public let service: ConnectClient
    /// The bound port; 0 when not listening.
    public let port: Int
    /// Where identity answers, for the services that call it (over HTTP/2).
    public var url: String { "http://127.0.0.1:\(port)" }
    /// How the services that call it reach it: its port, or in-process when not listening.
    public var upstream: Upstream { port == 0 ? .inProcess(host.endpoint) : .url(url) }

    public var maildrop: String { directory + "/maildrop" }

    /// `arguments` are identity's own flags (`IdentityOptions`); `--scrypt-log-n 10` unless given.
    /// With `directory`, identity's SQLite data lives there and outlives this harness (to start
    /// identity again on it); otherwise the harness makes and removes a database of `backend`.
    public static func start(
        directory: String? = nil, clock: TestClock = TestClock(), arguments: [String] = [], listening: Bool = true,
        backend: StorageBackend = .sqlite
    ) async throws -> IdentityHarness {
        let store = try await TestDatabase.start(directory == nil ? backend : .sqlite, service: "identity", directory: directory)
        do {
            return try await start(store: store, ownsStore: directory == nil, clock: clock, arguments: arguments, listening: listening)
        } catch {
            if directory == nil { await store.stop() }
            throw error
        }
    }

    /// identity on a database the test started (and stops): to start identity again on the same data.
    public static func start(
        store: TestDatabase, clock: TestClock = TestClock(), arguments: [String] = [], listening: Bool = true
    ) async throws -> IdentityHarness {
        try await start(store: store, ownsStore: false, clock: clock, arguments: arguments, listening: listening)
    }

    private static func start(
        store: TestDatabase, ownsStore: Bool, clock: TestClock, arguments: [String], listening: Bool
    ) async throws -> IdentityHarness {
        let digest = TrustedServices.digest(ofSecret: callerSecret)
        let settings = try ServiceOptions.parse(
            ["--port", "0"] + store.serviceArguments + [
                "--trusted-services", "console=\(digest),organization=\(TrustedServices.digest(ofSecret: organizationSecret))"
            ]
        )
        .settings(service: IdentityDefinition.identity, environment: [:])
        let identityArguments = arguments.contains("--scrypt-log-n") ? arguments : ["--scrypt-log-n", "10"] + arguments
        var configuration = try IdentityOptions.parse(identityArguments).configuration(settings: settings, environment: [:])
        configuration.now = clock.function
        let fixed = configuration
        var logger = Logger(label: "identity-test")
        logger.logLevel = .critical
        let host = try ServiceHost(definition: IdentityDefinition.make(configuration: fixed), settings: settings, logger: logger)
        let (port, upstream) = try await host.start(listening: listening)
        return IdentityHarness(
            host: host, store: store, ownsStore: ownsStore, clock: clock, port: port,
            client: try ConnectClient(upstream: upstream),
            service: try ConnectClient(upstream: upstream, credential: ServiceCredential(serviceName: "console", secret: callerSecret)))
    }

    private init(
        host: ServiceHost, store: TestDatabase, ownsStore: Bool, clock: TestClock, port: Int, client: ConnectClient, service: ConnectClient
    ) {
        self.host = host
        self.directory = store.dataDirectory
        self.store = store
        self.ownsStore = ownsStore
        self.clock = clock
        self.port = port
        self.client = client
        self.service = service
    }

    public func stop() async {
        await client.close()
        await service.close()
        await host.shutdown(timeout: .seconds(2))
        if ownsStore { await store.stop() }
    }

    // MARK: Email

    /// Every email in the maildrop to `address`, oldest first.
    public func emails(to address: String) -> [ReceivedEmail] {
        MaildropReader(directory: maildrop).emails(to: address)
    }

    /// Waits until `count` emails to `address` have arrived; returns them. The default wait is
    /// long because the test command's services pass runs many suites at once on 2 cores.
    @discardableResult
    public func waitForEmails(to address: String, count: Int = 1, timeout: Duration = .seconds(30)) async throws -> [ReceivedEmail] {
        try await MaildropReader(directory: maildrop).waitForEmails(to: address, count: count, timeout: timeout)
    }

    // MARK: Journeys

    public static let password = "a long enough passphrase"

    /// Registers, verifies through the emailed link and signs in.
    public func signedUpUser(
        _ email: String = "user-\(UUID().uuidString.prefix(8))@example.com",
        password: String = IdentityHarness.password
    ) async throws -> LoginResponse {
        _ = try await client.call(Identity.register, RegisterRequest(email: email, password: password, fullName: "Test User"))
        let link = try await waitForEmails(to: email)[0]
        _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: link.token ?? ""))
        return try await client.call(Identity.login, LoginRequest(email: email, password: password))
    }

    // MARK: Database

    /// The SQLite database itself, for tests of what only SQLite has.
    public func database() throws -> DatabaseQueue {
        try DatabaseQueue(path: directory + "/identity.sqlite")
    }

    /// Row counts of every table identity writes, to prove a refused call changed nothing.
    public func rowCounts() async throws -> [String: Int] {
        try await store.rowCounts([#""user""#, "one_time_token", "session", "login_throttle", "email_outbox", "audit_event", "signing_key"])
    }
}
