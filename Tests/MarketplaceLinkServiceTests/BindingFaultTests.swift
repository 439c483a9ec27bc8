import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// The binding saga when organization cannot confirm: first its database is write-locked by
/// another process (sqlite3 holding BEGIN IMMEDIATE), so CheckAdmin still answers but
/// SetBillingAccount fails after organization's 5 s busy timeout; then organization is down.
@Suite(.serialized, .timeLimit(.minutes(3))) struct BindingFaultTests {
    private func billingRows(_ database: String) async throws -> String {
        try await ExternalCommand.run(["sqlite3", database, "SELECT count(*) FROM billing_account"], timeout: .seconds(10))
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: StorageBackend.allCases) func aBindCompletesOnceOrganizationIsBack(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let (user, organization) = try await system.adminWithOrganization()
            let claim = try #require(try await system.register().claim)
            let lock = try SQLiteWriteLock(system.organizationDatabase)
            let first = try await system.linkClient.call(
                MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                options: .init(timeout: .seconds(30), bearerToken: user.accessToken))
            #expect(first.state == .binding, "organization could not write, so the link waits")
            // Then organization goes down altogether: the retries find nobody listening.
            await system.organization.shutdown(timeout: .seconds(2))
            lock.release()
            try await Task.sleep(for: .seconds(3))
            #expect(try await system.linkSQL("SELECT state || ' ' || CASE WHEN attempts >= 2 THEN 1 ELSE 0 END FROM link") == "BINDING 1")
            #expect(try await billingRows(system.organizationDatabase) == "0")
            // organization is back: the bind completes.
            try await withStarted(system.startOrganizationAgain()) { restarted in
                // (The billing page asks organization too: while marketplace-link's client backs off from
                // the restart, it may answer unavailable, so errors are retried here.)
                let active = try await eventually(timeout: .seconds(30)) {
                    (try? await system.linkClient.call(
                        MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: organization.id),
                        options: .init(bearerToken: user.accessToken)))?.state == .active
                }
                #expect(active)
                #expect(try await billingRows(system.organizationDatabase) == "1")
            }
        }
    }

    /// With PostgreSQL the step the killed process had taken is leased to it: the new process
    /// takes it up once the lease (15 s) has run out.
    @Test(arguments: StorageBackend.allCases) func killNineAfterBindingIsRecordedLeavesOneActiveLinkAfterRestart(backend: StorageBackend) async throws
    {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            try await withStarted(TestDatabase.start(backend, service: "marketplace-link")) { linkStore in
                let (user, organization) = try await system.adminWithOrganization()
                // marketplace-link as a real process, so it can be killed.
                let arguments =
                    ["--port", "0"] + linkStore.serviceArguments + [
                        "--identity-url", "http://127.0.0.1:\(system.identity.port)",
                        "--organization-url", system.organizationURL, "--aws-marketplace-endpoint", system.simulator.baseURL,
                        "--service-secret", JourneyHarness.linkSecret, "--product-code", SimulatorProcess.product
                    ]
                let environment = ["AWS_ACCESS_KEY_ID": SimulatorProcess.sellerAccessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.sellerSecret]
                let first = try await ChildProcess(service: "marketplace-link", arguments: arguments, environment: environment)
                let client = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(first.port)"))
                let token = try await system.simulator.subscribeAndSetUp(identity: "alice", offer: "offer-a")
                let claim = try #require(
                    try await client.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token)).claim)

                let lock = try SQLiteWriteLock(system.organizationDatabase)
                let bind = Task {
                    try? await client.call(
                        MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                        options: .init(timeout: .seconds(30), bearerToken: user.accessToken))
                }
                let recorded = try await eventually(timeout: .seconds(15)) { try await linkStore.query("SELECT state FROM link") == "BINDING" }
                #expect(recorded, "\(first.output)")
                first.signal(SIGKILL)
                _ = await first.waitForExit(timeout: .seconds(5))
                _ = await bind.value
                await client.close()
                lock.release()
                #expect(try await billingRows(system.organizationDatabase) == "0")

                try await withStarted(ChildProcess(service: "marketplace-link", arguments: arguments, environment: environment)) { second in
                    let activated = try await eventually(timeout: .seconds(40)) { try await linkStore.query("SELECT state FROM link") == "ACTIVE" }
                    #expect(activated, "\(second.output)")
                    #expect(try await billingRows(system.organizationDatabase) == "1")
                    #expect(try await linkStore.count("SELECT count(*) FROM link") == 1)
                }
            }
        }
    }
}
