import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// Two marketplace-link processes on one PostgreSQL database, with identity, organization and
/// the AWS stand-in as processes: binds spread over both replicas use a claim once, and a
/// replica killed in the middle of a bind leaves it to the other.
@Suite(.serialized, .timeLimit(.minutes(4))) struct ReplicatedMarketplaceLinkTests {
    static let linkSecret = "replicas-link-secret"
    static let reporterSecret = "replicas-usage-reporter-secret"
    /// Metering hours of 6 s; each wave of usage is sent as an hour starts, so it is recorded
    /// before its hour closes even when the machine is slow.
    static let meteringHour = 6

    struct System: Sendable {
        let identity: ChildProcess
        let organization: ChildProcess
        let simulator: SimulatorProcess
        let base: String
        var organizationURL: String { "http://127.0.0.1:\(organization.port)" }
        var organizationDatabase: String { base + "/organization/organization.sqlite" }
        let linkArguments: [String]
        let linkEnvironment: [String: String]
    }

    /// The system around marketplace-link, whose replicas `body` starts on `database`.
    private func withSystem(_ database: TestDatabase, _ body: @Sendable (System) async throws -> Void) async throws {
        let base = NSTemporaryDirectory() + "link-replicas-\(UUID().uuidString)"
        let digest = try await ExternalCommand.run(
            ["bash", "-c", "printf '%s' '\(Self.linkSecret)' | sha256sum | cut -d' ' -f1"], timeout: .seconds(10)
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await withStarted(
            ChildProcess(service: "identity", arguments: ["--port", "0", "--data-dir", base + "/identity", "--scrypt-log-n", "10"])
        ) { identity in
            try await withStarted(
                ChildProcess(
                    service: "organization",
                    arguments: [
                        "--port", "0", "--data-dir", base + "/organization", "--identity-url", "http://127.0.0.1:\(identity.port)",
                        "--trusted-services", "marketplace-link=\(digest)"
                    ])
            ) { organization in
                try await withStarted(SimulatorProcess.start(meteringHourSeconds: Self.meteringHour)) { simulator in
                    let arguments =
                        ["--port", "0"] + database.serviceArguments + [
                            "--identity-url", "http://127.0.0.1:\(identity.port)", "--organization-url", "http://127.0.0.1:\(organization.port)",
                            "--aws-marketplace-endpoint", simulator.baseURL, "--service-secret", Self.linkSecret,
                            "--product-code", SimulatorProcess.product,
                            "--trusted-services", "usage-reporter=\(TrustedServices.digest(ofSecret: Self.reporterSecret))",
                            "--metered-dimensions", "compute,storage", "--metering-hour-seconds", "\(Self.meteringHour)"
                        ]
                    try await body(
                        System(
                            identity: identity, organization: organization, simulator: simulator, base: base, linkArguments: arguments,
                            linkEnvironment: [
                                "AWS_ACCESS_KEY_ID": SimulatorProcess.sellerAccessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.sellerSecret
                            ]))
                }
            }
        }
    }

    /// A replica of marketplace-link (each its own data directory; the data is in PostgreSQL).
    private func replica(_ system: System, _ name: String) async throws -> ChildProcess {
        try await ChildProcess(
            service: "marketplace-link", arguments: system.linkArguments + ["--data-dir", system.base + "/" + name],
            environment: system.linkEnvironment)
    }

    /// A signed-up user administering a new organization.
    private func admin(_ name: String, _ system: System) async throws -> (LoginResponse, Organization) {
        try await withStarted(ConnectClient(upstream: .url("http://127.0.0.1:\(system.identity.port)"))) { identity in
            try await withStarted(ConnectClient(upstream: .url(system.organizationURL))) { organizations in
                let email = "\(name)-\(UUID().uuidString.prefix(6).lowercased())@example.com"
                _ = try await identity.call(Identity.register, RegisterRequest(email: email, password: "replicated passphrase", fullName: name))
                let token = try await MaildropReader(directory: system.base + "/identity/maildrop").linkToken(to: email)
                _ = try await identity.call(Identity.verifyEmail, VerifyEmailRequest(token: token))
                let login = try await identity.call(Identity.login, LoginRequest(email: email, password: "replicated passphrase"))
                let organization = try await organizations.call(
                    Organizations.createOrganization, CreateOrganizationRequest(name: "\(name) Co"), options: .init(bearerToken: login.accessToken))
                return (login, organization)
            }
        }
    }

    private func billingRows(_ system: System) async throws -> String {
        try await ExternalCommand.run(["sqlite3", system.organizationDatabase, "SELECT count(*) FROM billing_account"], timeout: .seconds(10))
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func sixBindsOfOneClaimOverTwoReplicasMakeOneLinkAndOneBillingAccount() async throws {
        try await withStarted(TestDatabase.start(.postgres, service: "marketplace-link")) { database in
            try await withSystem(database) { system in
                try await withStarted(replica(system, "one")) { one in
                    try await withStarted(replica(system, "two")) { two in
                        let clients = [
                            try ConnectClient(upstream: .url("http://127.0.0.1:\(one.port)")),
                            try ConnectClient(upstream: .url("http://127.0.0.1:\(two.port)"))
                        ]
                        defer { for client in clients { Task { await client.close() } } }
                        var admins: [(LoginResponse, Organization)] = []
                        for index in 0..<3 { admins.append(try await admin("racer\(index)", system)) }
                        let token = try await system.simulator.subscribeAndSetUp(identity: "alice", offer: "offer-a")
                        let claim = try #require(
                            try await clients[0].call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token))
                                .claim)
                        // Each organization's admin binds twice, once through each replica, all at once.
                        let outcomes = await withTaskGroup(of: LinkState?.self) { group in
                            for (index, (user, organization)) in (admins + admins).enumerated() {
                                group.addTask {
                                    try? await clients[index % 2].call(
                                        MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                                        options: .init(bearerToken: user.accessToken)
                                    ).state
                                }
                            }
                            return await group.reduce(into: [LinkState?]()) { $0.append($1) }
                        }
                        #expect(outcomes.compactMap { $0 } == [.active], "\(outcomes)")
                        #expect(try await database.count("SELECT count(*) FROM link") == 1)
                        #expect(try await database.count("SELECT count(*) FROM registration WHERE claim_used_at IS NOT NULL") == 1)
                        #expect(try await billingRows(system) == "1")
                    }
                }
            }
        }
    }

    @Test func aReplicaKilledInTheMiddleOfABindLeavesItToTheOther() async throws {
        try await withStarted(TestDatabase.start(.postgres, service: "marketplace-link")) { database in
            try await withSystem(database) { system in
                try await withStarted(replica(system, "survivor")) { survivor in
                    let (user, organization) = try await admin("carol", system)
                    let doomed = try await replica(system, "doomed")
                    let client = try ConnectClient(upstream: .url("http://127.0.0.1:\(doomed.port)"))
                    let token = try await system.simulator.subscribeAndSetUp(identity: "carol", offer: "offer-c")
                    let claim = try #require(
                        try await client.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token)).claim)

                    // organization's writes hang (its database is locked): the doomed replica's
                    // SET_BILLING is in flight, its step leased, when it is killed.
                    let lock = try SQLiteWriteLock(system.organizationDatabase)
                    let bind = Task {
                        try? await client.call(
                            MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                            options: .init(timeout: .seconds(30), bearerToken: user.accessToken))
                    }
                    let leased = try await eventually(timeout: .seconds(15)) {
                        try await database.query("SELECT state || ' ' || CASE WHEN step_lease_until IS NULL THEN 0 ELSE 1 END FROM link")
                            == "BINDING 1"
                    }
                    #expect(leased)
                    doomed.signal(SIGKILL)
                    _ = await doomed.waitForExit(timeout: .seconds(5))
                    _ = await bind.value
                    await client.close()
                    lock.release()
                    #expect(try await billingRows(system) == "0")

                    // The survivor takes the step once the dead replica's lease has run out.
                    let activated = try await eventually(timeout: .seconds(40)) { try await database.query("SELECT state FROM link") == "ACTIVE" }
                    #expect(activated, "\(survivor.output)")
                    #expect(try await billingRows(system) == "1")
                    #expect(try await database.count("SELECT count(*) FROM link") == 1)
                }
            }
        }
    }

    /// Usage recorded through both replicas, every batch sent to each (a retry landing on the
    /// other replica), while both replicas' meters freeze and send: each (customer, dimension,
    /// hour) reaches AWS once, with the events' totals.
    @Test func usageThroughTwoReplicasIsBilledOnce() async throws {
        try await withStarted(TestDatabase.start(.postgres, service: "marketplace-link")) { database in
            try await withSystem(database) { system in
                try await withStarted(replica(system, "one")) { one in
                    try await withStarted(replica(system, "two")) { two in
                        let credential = ServiceCredential(serviceName: "usage-reporter", secret: Self.reporterSecret)
                        let clients = [
                            try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(one.port)", credential: credential)),
                            try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(two.port)", credential: credential))
                        ]
                        defer { for client in clients { Task { await client.close() } } }
                        let (user, organization) = try await admin("metered", system)
                        let token = try await system.simulator.subscribeAndSetUp(identity: "alice", offer: "offer-a")
                        let claim = try #require(
                            try await clients[0].call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token)).claim)
                        let bound = try await clients[1].call(
                            MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                            options: .init(bearerToken: user.accessToken))
                        #expect(bound.state == .active)

                        var all: [UsageEvent] = []
                        for wave in 0..<3 {
                            try await waitForPeriodStart(seconds: Self.meteringHour)
                            let batches = (0..<8).map { batch in
                                (0..<25).map { index in
                                    UsageEvent(
                                        idempotencyKey: "w\(wave)-b\(batch)-e\(index)", organizationId: organization.id,
                                        dimension: index % 3 == 0 ? "storage" : "compute", quantity: Int32(index + 1), occurredAt: Date())
                                }
                            }
                            all += batches.flatMap { $0 }
                            let accepted = try await withThrowingTaskGroup(of: Int32.self) { group in
                                for (index, batch) in (batches + batches).enumerated() {
                                    group.addTask {
                                        try await clients[index % 2].call(MarketplaceLink.recordUsage, RecordUsageRequest(events: batch)).accepted
                                    }
                                }
                                return try await group.reduce(0, +)
                            }
                            #expect(accepted == 200)
                        }
                        let sent = try await eventually(timeout: .seconds(40)) {
                            let hours = try await database.count("SELECT count(*) FROM usage_hour")
                            let unsent = try await database.count("SELECT count(*) FROM usage_hour WHERE state != 'SENT'")
                            return hours > 0 && unsent == 0
                        }
                        #expect(sent, "\(one.output)\n\(two.output)")
                        let records = try await system.simulator.meteringRecords()
                        let expected = all.reduce(into: [String: Int]()) { $0[$1.dimension, default: 0] += Int($1.quantity) }
                        #expect(records.reduce(into: [String: Int]()) { $0[$1.dimension, default: 0] += $1.quantity } == expected)
                        #expect(Set(records.map { "\($0.dimension) \($0.hour)" }).count == records.count)
                        #expect(try await database.count("SELECT count(*) FROM usage_hour") == records.count)
                        #expect(try await database.count("SELECT count(*) FROM usage_event") == all.count)
                    }
                }
            }
        }
    }
}
