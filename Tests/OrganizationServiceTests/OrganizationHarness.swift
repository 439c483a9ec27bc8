import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import GRDB
import IdentityTestSupport
import Logging
import OrganizationService
import RPCCore
import ServiceRuntime
import TestSupport

/// organization in-process with a real identity issuing the tokens, and a client holding
/// marketplace-link's service credential. Both on ephemeral ports, or with `listening: false`
/// called without sockets (the rule and authorization tests: same protocol checks and errors,
/// no wire).
final class OrganizationHarness: TestFixture {
    static let serviceSecret = "marketplace-link-test-secret"
    static let otherServiceSecret = "identity-test-secret"
    let identity: IdentityHarness
    let host: ServiceHost
    /// organization's database (SQLite file or PostgreSQL), to look inside.
    let database: TestDatabase
    /// organization's own clock, moved to expire tokens from its point of view.
    let clock: TestClock
    /// The bound port; 0 when not listening.
    let port: Int
    /// Calls without any credential; add a bearer token per call.
    let client: ConnectClient
    /// Calls as marketplace-link.
    let service: ConnectClient
    /// Calls as identity: trusted, but not for organization's internal methods.
    let otherService: ConnectClient

    static func start(listening: Bool = true, backend: StorageBackend = .sqlite) async throws -> OrganizationHarness {
        let database = try await TestDatabase.start(backend, service: "organization")
        do {
            return try await start(listening: listening, database: database)
        } catch {
            await database.stop()
            throw error
        }
    }

    private static func start(listening: Bool, database: TestDatabase) async throws -> OrganizationHarness {
        let identity = try await IdentityHarness.start(listening: listening)
        let digest = TrustedServices.digest(ofSecret: serviceSecret)
        let settings = try ServiceOptions.parse(
            ["--port", "0"] + database.serviceArguments + [
                "--service-secret", IdentityHarness.organizationSecret,
                "--trusted-services", "marketplace-link=\(digest),identity=\(TrustedServices.digest(ofSecret: otherServiceSecret))"
            ]
        ).settings(service: OrganizationDefinition.identity, environment: [:])
        let clock = TestClock()
        var logger = Logger(label: "organization-test")
        logger.logLevel = .critical
        let host = try ServiceHost(
            definition: OrganizationDefinition.make(identity: identity.upstream, now: clock.function), settings: settings, logger: logger)
        let port: Int, upstream: Upstream
        do {
            (port, upstream) = try await host.start(listening: listening)
        } catch {
            await identity.stop()
            throw error
        }
        return OrganizationHarness(
            identity: identity, host: host, database: database, clock: clock, port: port,
            client: try ConnectClient(upstream: upstream),
            service: try ConnectClient(upstream: upstream, credential: ServiceCredential(serviceName: "marketplace-link", secret: serviceSecret)),
            otherService: try ConnectClient(upstream: upstream, credential: ServiceCredential(serviceName: "identity", secret: otherServiceSecret)))
    }

    private init(
        identity: IdentityHarness, host: ServiceHost, database: TestDatabase, clock: TestClock, port: Int,
        client: ConnectClient, service: ConnectClient, otherService: ConnectClient
    ) {
        self.identity = identity
        self.host = host
        self.database = database
        self.clock = clock
        self.port = port
        self.client = client
        self.service = service
        self.otherService = otherService
    }

    func stop() async {
        await client.close()
        await service.close()
        await otherService.close()
        await host.shutdown(timeout: .seconds(2))
        await identity.stop()
        await database.stop()
    }

    /// A signed-up, verified, signed-in user.
    func user(_ name: String) async throws -> LoginResponse {
        try await identity.signedUpUser("\(name)-\(UUID().uuidString.prefix(6).lowercased())@example.com")
    }

    func call<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, as user: LoginResponse,
        headers: [(name: String, value: String)] = []
    ) async throws(RPCError) -> Response {
        try await client.call(method, request, options: .init(bearerToken: user.accessToken, headers: headers))
    }

    /// An organization created by `admin`, with the other users invited in the given roles and
    /// accepting.
    func organization(admin: LoginResponse, members: [(LoginResponse, Role)] = [], name: String = "Acme") async throws -> String {
        let organization = try await call(Organizations.createOrganization, CreateOrganizationRequest(name: name), as: admin)
        for (member, role) in members {
            _ = try await call(Organizations.addMember, MemberRequest(organizationId: organization.id, userId: member.user.id, role: role), as: admin)
            _ = try await call(Organizations.acceptInvitation, OrganizationRef(organizationId: organization.id), as: member)
        }
        return organization.id
    }

    /// Makes `userID` a member directly in the database: a fixture for members who never sign in
    /// (targets of role changes and removals in the authorization matrix).
    func insertMember(organizationID: String, userID: String, role: Role) async throws {
        try await database.execute(
            """
            INSERT INTO membership (organization_id, user_id, role, added_at)
            VALUES ('\(organizationID)', '\(userID)', '\(role.rawValue)', \(database.nowExpression))
            """)
    }

    func rowCounts() async throws -> [String: Int] {
        try await database.rowCounts([
            "organization", "membership", "invitation", "selected_organization", "create_idempotency", "billing_account", "audit_event"
        ])
    }

    static func contract(_ offer: String = "offer-1") -> ContractSummary {
        ContractSummary(productCode: "prod-committed", offerId: offer, dimensions: ["committed_spend_usd": "100000"])
    }
}
