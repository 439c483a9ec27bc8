import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import IdentityService
import IdentityTestSupport
import Logging
import OrganizationService
import RPCCore
import ServiceRuntime
import TestSupport
import Testing

/// Every method against every kind of caller, through organization's router in-process (the
/// same protocol checks as on the wire), with identity issuing real tokens.
/// The expected table is the one in the README.
@Suite(.timeLimit(.minutes(3))) struct AuthorizationMatrixTests {
    enum Caller: String, CaseIterable {
        case admin, developer, billing, member, nonMember, noToken, expiredToken, unknownKeyToken, serviceCredential
        /// A trusted service that is not marketplace-link (identity's credential).
        case otherService
    }

    /// nil: the call succeeds; otherwise the code it must fail with.
    typealias Expectations = [Caller: ConnectCode?]

    static let badTokens: Expectations = [
        .noToken: .unauthenticated, .expiredToken: .unauthenticated,
        .unknownKeyToken: .unauthenticated, .serviceCredential: .unauthenticated,
        .otherService: .unauthenticated
    ]
    static let anyUser: Expectations = badTokens.merging([.admin: nil, .developer: nil, .billing: nil, .member: nil, .nonMember: nil]) { $1 }
    static let anyMember: Expectations = badTokens.merging([.admin: nil, .developer: nil, .billing: nil, .member: nil, .nonMember: .notFound]) { $1 }
    static let adminOnly: Expectations = badTokens.merging([
        .admin: nil, .developer: .permissionDenied, .billing: .permissionDenied,
        .member: .permissionDenied, .nonMember: .notFound
    ]) { $1 }
    static let adminOrBilling: Expectations = badTokens.merging([
        .admin: nil, .developer: .permissionDenied, .billing: nil,
        .member: .permissionDenied, .nonMember: .notFound
    ]) { $1 }
    static let serviceOnly: Expectations = [
        .admin: .unauthenticated, .developer: .unauthenticated, .billing: .unauthenticated,
        .member: .unauthenticated, .nonMember: .unauthenticated, .noToken: .unauthenticated,
        .expiredToken: .unauthenticated, .unknownKeyToken: .unauthenticated, .serviceCredential: nil,
        .otherService: .permissionDenied
    ]

    @Test(arguments: StorageBackend.allCases) func everyMethodAgainstEveryCaller(backend: StorageBackend) async throws {
        try await withStarted(OrganizationHarness.start(listening: false, backend: backend)) { harness in
            let users: [Caller: LoginResponse] = [
                .admin: try await harness.user("admin"), .developer: try await harness.user("developer"),
                .billing: try await harness.user("billing"), .member: try await harness.user("member"),
                .nonMember: try await harness.user("outsider")
            ]
            // A registered user nobody has invited yet, for AddMember.
            let newcomer = try await harness.user("newcomer")
            // A token from a key identity never published, with otherwise genuine claims.
            let keys = try await harness.identity.client.call(Identity.getSigningKeys, Empty())
            let claims = try AccessTokenVerifier(keySet: keys).verify(users[.admin]!.accessToken)
            let foreignToken = try SigningKey.generate().sign(claims)

            func call<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request, as caller: Caller) async -> ConnectCode? {
                do throws(RPCError) {
                    switch caller {
                    case .noToken:
                        _ = try await harness.client.call(method, request)
                    case .unknownKeyToken:
                        _ = try await harness.client.call(method, request, options: .init(bearerToken: foreignToken))
                    case .expiredToken:
                        harness.clock.advance(by: 601)
                        defer { harness.clock.advance(by: -601) }
                        _ = try await harness.client.call(method, request, options: .init(bearerToken: users[.admin]!.accessToken))
                    case .serviceCredential:
                        _ = try await harness.service.call(method, request)
                    case .otherService:
                        _ = try await harness.otherService.call(method, request)
                    default:
                        _ = try await harness.client.call(method, request, options: .init(bearerToken: users[caller]!.accessToken))
                    }
                    return nil
                } catch {
                    return error.code
                }
            }

            /// A fresh organization for each method, so one caller's change cannot decide another's outcome.
            func check<Request, Response>(
                _ method: RPCMethod<Request, Response>, _ expected: Expectations,
                request: (String, Caller) -> Request
            ) async throws {
                let organization = try await harness.organization(
                    admin: users[.admin]!,
                    members: [
                        (users[.developer]!, .developer), (users[.billing]!, .billing), (users[.member]!, .member)
                    ])
                // A second admin, so the first may leave, and a member per caller to act on.
                try await harness.insertMember(organizationID: organization, userID: "second-admin", role: .admin)
                for caller in Caller.allCases {
                    try await harness.insertMember(organizationID: organization, userID: "target-\(caller.rawValue.lowercased())", role: .member)
                }
                for caller in Caller.allCases {
                    let outcome = await call(method, request(organization, caller), as: caller)
                    #expect(outcome == expected[caller]!, "\(method.name) as \(caller): got \(outcome.map { "\($0)" } ?? "success")")
                }
            }

            try await check(Organizations.createOrganization, Self.anyUser) { _, caller in CreateOrganizationRequest(name: "Made by \(caller)") }
            try await check(Organizations.listMyOrganizations, Self.anyUser) { _, _ in Empty() }
            try await check(Organizations.getOrganization, Self.anyMember) { id, _ in OrganizationRef(organizationId: id) }
            try await check(Organizations.selectOrganization, Self.anyMember) { id, _ in OrganizationRef(organizationId: id) }
            try await check(Organizations.getSelectedOrganization, Self.anyUser) { _, _ in Empty() }
            try await check(Organizations.addMember, Self.adminOnly) { id, _ in
                MemberRequest(organizationId: id, userId: newcomer.user.id, role: .member)
            }
            try await check(Organizations.changeMemberRole, Self.adminOnly) { id, caller in
                MemberRequest(organizationId: id, userId: "target-\(caller.rawValue.lowercased())", role: .developer)
            }
            try await check(Organizations.removeMember, Self.adminOnly) { id, caller in
                MemberRef(organizationId: id, userId: "target-\(caller.rawValue.lowercased())")
            }
            try await check(Organizations.leaveOrganization, Self.anyMember) { id, _ in OrganizationRef(organizationId: id) }
            try await check(Organizations.listMembers, Self.anyMember) { id, _ in OrganizationRef(organizationId: id) }
            try await check(Organizations.listMyInvitations, Self.anyUser) { _, _ in Empty() }
            try await check(Organizations.checkAdmin, Self.serviceOnly) { id, _ in MemberRef(organizationId: id, userId: users[.admin]!.user.id) }
            try await check(Organizations.getBillingAccount, Self.adminOrBilling) { id, _ in OrganizationRef(organizationId: id) }
            try await check(Organizations.setBillingAccount, Self.serviceOnly) { id, _ in
                SetBillingAccountRequest(
                    organizationId: id, provider: .awsMarketplace, awsAccountId: "123456789012", linkId: "link-\(id)",
                    contract: OrganizationHarness.contract())
            }
            try await check(Organizations.clearBillingAccount, Self.serviceOnly) { id, _ in
                ClearBillingAccountRequest(organizationId: id, linkId: "link-\(id)", reason: "test")
            }
            try await check(Organizations.listAuditEvents, Self.adminOnly) { id, _ in OrganizationRef(organizationId: id) }

            // The flags organization gives other services say exactly what it enforces: canReadBilling
            // where GetBillingAccount succeeds, canLinkBilling for ADMIN only.
            let organization = try await harness.organization(
                admin: users[.admin]!, members: [(users[.developer]!, .developer), (users[.billing]!, .billing), (users[.member]!, .member)])
            for caller in [Caller.admin, .developer, .billing, .member] {
                let seen = try await harness.call(Organizations.getOrganization, OrganizationRef(organizationId: organization), as: users[caller]!)
                let check = try await harness.service.call(
                    Organizations.checkAdmin, MemberRef(organizationId: organization, userId: users[caller]!.user.id))
                let readsBilling = Self.adminOrBilling[caller]! == nil
                #expect(seen.canReadBilling == readsBilling && check.canReadBilling == readsBilling, "\(caller)")
                #expect(seen.canLinkBilling == (caller == .admin), "\(caller)")
            }
            let outsider = try await harness.service.call(
                Organizations.checkAdmin, MemberRef(organizationId: organization, userId: users[.nonMember]!.user.id))
            #expect(!outsider.canReadBilling && outsider.role == nil)
        }
    }

    @Test func aTokenSignedWithANewKeyAfterRotationIsAccepted() async throws {
        try await withStarted(OrganizationHarness.start()) { harness in
            let before = try await harness.user("rotating")
            _ = try await harness.call(Organizations.listMyOrganizations, Empty(), as: before)
            let settings = try ServiceOptions.parse(["--data-dir", harness.identity.directory])
                .settings(service: IdentityDefinition.identity, environment: [:])
            let newKey = try await IdentityDefinition.rotateSigningKeys(settings: settings)
            // identity signs with the new key within its reload interval; organization has never seen it.
            var after: LoginResponse?
            try await eventually(timeout: .seconds(10)) {
                let login = try await harness.identity.client.call(
                    Identity.login, LoginRequest(email: before.user.email, password: IdentityHarness.password))
                after = login
                return AccessTokenVerifier.keyID(of: login.accessToken) == newKey
            }
            let fresh = try #require(after)
            #expect(AccessTokenVerifier.keyID(of: fresh.accessToken) == newKey)
            _ = try await harness.call(Organizations.listMyOrganizations, Empty(), as: fresh)
            _ = try await harness.call(Organizations.listMyOrganizations, Empty(), as: before)
        }
    }

    @Test func withoutIdentitysKeysCallsAreUnavailableNotAccepted() async throws {
        let deadIdentity = try await freePort()
        let settings = try ServiceOptions.parse([
            "--port", "0", "--data-dir", NSTemporaryDirectory() + "org-\(UUID().uuidString)"
        ])
        .settings(service: OrganizationDefinition.identity, environment: [:])
        var logger = Logger(label: "organization-test")
        logger.logLevel = .critical
        let host = try ServiceHost(
            definition: OrganizationDefinition.make(identity: .url("http://127.0.0.1:\(deadIdentity)")), settings: settings, logger: logger)
        let port = try await host.start().port!
        let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)"))
        let forged = try SigningKey.generate().sign(
            AccessTokenClaims(
                subject: "someone", email: "x@example.com", emailVerified: true, onboardingState: .complete, sessionID: "s",
                issuedAt: Date(), expiresAt: Date() + 600))
        await #expect(throws: RPCError(.unavailable, "cannot check the access token now: identity's signing keys are unavailable; try again shortly"))
        {
            try await client.call(Organizations.listMyOrganizations, Empty(), options: .init(bearerToken: forged))
        }
        await client.close()
        await host.shutdown(timeout: .seconds(2))
    }
}
