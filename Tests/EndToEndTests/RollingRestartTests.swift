import ConnectTransport
import Contracts
import Foundation
import RPCCore
import Synchronization
import TestSupport
import Testing

/// Two replicas each of identity, organization and marketplace-link on PostgreSQL, restarted one
/// at a time (SIGTERM, drain, start again on the same port) while buyers go through the journey
/// without pause: every journey completes. Clients reach the replicas as a comma-separated URL
/// list, as the services reach each other's.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RollingRestartTests {
    static let linkSecret = "rolling-link-secret"
    static let buyers = 120

    /// A seed with a buyer account (and an offer to it) per journey: one AWS account binds once.
    private func seed() throws -> String {
        let future = Date().addingTimeInterval(30 * 86400).formatted(.iso8601)
        let offers = (0..<Self.buyers).map { index in
            #"{"id": "offer-\#(index)", "buyerAccountId": "\#(Self.account(index))", "committedAmountUSD": 1000, "termMonths": 12, "dimensions": {"seats": 1}, "expiresAt": "\#(future)"}"#
        }
        let buyers = (0..<Self.buyers).map { index in
            #"{"accountId": "\#(Self.account(index))", "email": "buyer\#(index)@example.com", "identities": [{"name": "buyer\#(index)", "managedPolicies": ["AWSMarketplaceRead-only", "AWSMarketplaceManageSubscriptions"], "actions": []}]}"#
        }
        let json = """
            {"sellerKeys": [{"accessKeyId": "\(SimulatorProcess.sellerAccessKeyID)", "secretAccessKey": "\(SimulatorProcess.sellerSecret)"}],
             "product": {"code": "\(SimulatorProcess.product)", "name": "Committed Contract"},
             "offers": [\(offers.joined(separator: ",\n"))],
             "buyers": [\(buyers.joined(separator: ",\n"))]}
            """
        return try temporaryFile(Data(json.utf8))
    }

    private static func account(_ index: Int) -> String { String(format: "3%011d", index) }

    /// A replica that can be stopped and started again on its port.
    final class Replica: @unchecked Sendable {
        let service: String
        let port: Int
        let arguments: [String]
        let environment: [String: String]
        private let process = Mutex<ChildProcess?>(nil)

        init(service: String, port: Int, arguments: [String], environment: [String: String] = [:]) {
            self.service = service
            self.port = port
            self.arguments = arguments
            self.environment = environment
        }

        func start() async throws {
            let started = try await ChildProcess(
                service: service, arguments: ["--port", String(port)] + arguments, environment: environment)
            process.withLock { $0 = started }
        }

        /// SIGTERM: the replica drains (GOAWAY, in-flight calls finish) and exits 0.
        func stopGracefully() async -> Int32? {
            guard let running = process.withLock({ $0 }) else { return nil }
            running.signal(SIGTERM)
            return await running.waitForExit(timeout: .seconds(15))
        }

        func stop() async { await process.withLock({ $0 })?.stop() }
        var output: String { process.withLock { $0 }?.output ?? "" }
    }

    /// State the journey workers and the restarter share.
    final class Shared<Value: Sendable>: Sendable {
        let value: Mutex<Value>
        init(_ initial: Value) { value = Mutex(initial) }
    }

    private func signedUp(_ name: String, identity client: ConnectClient, maildrop: String) async throws -> LoginResponse {
        let email = "\(name)-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        _ = try await client.call(Identity.register, RegisterRequest(email: email, password: "rolling passphrase", fullName: name))
        let token = try await MaildropReader(directory: maildrop).linkToken(to: email)
        _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: token))
        return try await client.call(Identity.login, LoginRequest(email: email, password: "rolling passphrase"))
    }

    @Test func restartingEachReplicaInTurnFailsNoJourney() async throws {
        try await withStarted(TestDatabase.start(.postgres, service: "identity")) { identityStore in
            try await withStarted(TestDatabase.start(.postgres, service: "organization")) { organizationStore in
                try await withStarted(TestDatabase.start(.postgres, service: "marketplace-link")) { linkStore in
                    let base = NSTemporaryDirectory() + "rolling-\(UUID().uuidString)"
                    let digest = try await ExternalCommand.run(
                        ["bash", "-c", "printf '%s' '\(Self.linkSecret)' | sha256sum | cut -d' ' -f1"], timeout: .seconds(10)
                    ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                    try await withStarted(SimulatorProcess.start(seedPath: try seed())) { simulator in
                        var ports: [Int] = []
                        for _ in 0..<6 { ports.append(try await freePort()) }
                        let identityURLs = ports[4..<6].map { "http://127.0.0.1:\($0)" }.joined(separator: ",")
                        let organizationURLs = ports[0..<2].map { "http://127.0.0.1:\($0)" }.joined(separator: ",")
                        let linkURLs = ports[2..<4].map { "http://127.0.0.1:\($0)" }.joined(separator: ",")
                        let maildrop = base + "/maildrop"
                        let identities = (0..<2).map { index in
                            Replica(
                                service: "identity", port: ports[4 + index],
                                arguments: identityStore.serviceArguments + [
                                    "--data-dir", base + "/identity-\(index)", "--scrypt-log-n", "10", "--maildrop-dir", maildrop
                                ])
                        }
                        let organizations = (0..<2).map { index in
                            Replica(
                                service: "organization", port: ports[index],
                                arguments: organizationStore.serviceArguments + [
                                    "--data-dir", base + "/organization-\(index)", "--identity-url", identityURLs,
                                    "--trusted-services", "marketplace-link=\(digest)"
                                ])
                        }
                        let links = (0..<2).map { index in
                            Replica(
                                service: "marketplace-link", port: ports[2 + index],
                                arguments: linkStore.serviceArguments + [
                                    "--data-dir", base + "/link-\(index)", "--identity-url", identityURLs,
                                    "--organization-url", organizationURLs, "--aws-marketplace-endpoint", simulator.baseURL,
                                    "--service-secret", Self.linkSecret, "--product-code", SimulatorProcess.product,
                                    // Every journey comes from this one address.
                                    "--registrations-per-minute", "1000"
                                ],
                                environment: [
                                    "AWS_ACCESS_KEY_ID": SimulatorProcess.sellerAccessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.sellerSecret
                                ])
                        }
                        let replicas = identities + organizations + links
                        defer { Task { for replica in replicas { await replica.stop() } } }
                        for replica in replicas { try await replica.start() }

                        let identityClient = try ConnectClient(upstream: .url(identityURLs))
                        let organizationClient = try ConnectClient(upstream: .url(organizationURLs))
                        let linkClient = try ConnectClient(upstream: .url(linkURLs))
                        let workers = 4
                        var users: [LoginResponse] = []
                        for index in 0..<workers {
                            users.append(try await signedUp("worker\(index)", identity: identityClient, maildrop: maildrop))
                        }
                        let nextBuyer = Shared(0)
                        let restarting = Shared(true)
                        let simulatorURL = simulator.baseURL

                        // One journey: a fresh access token, a new organization, the buyer's "Set up your
                        // account", the claim bound, billing ACTIVE.
                        let journey: @Sendable (LoginResponse, Int) async -> String? = { user, buyer in
                            do {
                                let access = try await identityClient.call(
                                    Identity.refreshAccessToken, SessionTokenRequest(sessionToken: user.sessionToken),
                                    options: .init(timeout: .seconds(20)))
                                let auth = ConnectClient.CallOptions(timeout: .seconds(20), bearerToken: access.accessToken)
                                _ = try await identityClient.call(Identity.getMe, Empty(), options: auth)
                                let organization = try await organizationClient.call(
                                    Organizations.createOrganization, CreateOrganizationRequest(name: "Rolling \(buyer)"), options: auth)
                                let token = try await SimulatorProcess.subscribeAndSetUp(
                                    baseURL: simulatorURL, identity: "buyer\(buyer)", offer: "offer-\(buyer)")
                                let claim = try await linkClient.call(
                                    MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token),
                                    options: .init(timeout: .seconds(20))
                                ).claim
                                let bound = try await linkClient.call(
                                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim ?? "", organizationId: organization.id),
                                    options: auth)
                                let status = try await linkClient.call(
                                    MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: organization.id), options: auth)
                                guard bound.state == .active, status.state == .active else {
                                    return "buyer \(buyer): \(String(describing: bound.state)), \(String(describing: status.state))"
                                }
                                return nil
                            } catch {
                                return "buyer \(buyer): \(error)"
                            }
                        }

                        let results = try await withThrowingTaskGroup(of: [String?].self) { group in
                            for user in users {
                                group.addTask {
                                    var outcomes: [String?] = []
                                    // Each worker keeps going while replicas restart, and at least a few journeys.
                                    while restarting.value.withLock({ $0 }) || outcomes.count < 3 {
                                        let buyer = nextBuyer.value.withLock { next in
                                            defer { next += 1 }
                                            return next
                                        }
                                        guard buyer < Self.buyers, outcomes.count < 24 else { break }
                                        outcomes.append(await journey(user, buyer))
                                    }
                                    return outcomes
                                }
                            }
                            group.addTask {
                                defer { restarting.value.withLock { $0 = false } }
                                try await Task.sleep(for: .milliseconds(500))
                                for replica in replicas {
                                    let status = await replica.stopGracefully()
                                    #expect(status == 0, "\(replica.service) on \(replica.port) did not drain and exit 0: \(replica.output)")
                                    try await Task.sleep(for: .milliseconds(300))
                                    try await replica.start()
                                    try await Task.sleep(for: .milliseconds(700))
                                }
                                return []
                            }
                            return try await group.reduce(into: [String?]()) { $0 += $1 }
                        }
                        await identityClient.close()
                        await organizationClient.close()
                        await linkClient.close()
                        let failures = results.compactMap { $0 }
                        #expect(failures.isEmpty, "\(failures.count) of \(results.count) journeys failed: \(failures.prefix(5))")
                        #expect(results.count >= 12, "only \(results.count) journeys ran")
                        #expect(try await linkStore.count("SELECT count(*) FROM link WHERE state = 'ACTIVE'") == results.count)
                        for replica in replicas { await replica.stop() }
                    }
                }
            }
        }
    }
}
