import AccessTokens
import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// Two identity processes on one PostgreSQL database: every email of the shared outbox goes out
/// exactly once, through a real SMTP server (aiosmtpd), and a signing-key rotation reaches both.
@Suite(.serialized, .timeLimit(.minutes(4))) struct ReplicatedIdentityTests {
    struct Received: Decodable {
        var to: [String]
        var data: String
    }

    private func mailbox(_ path: String) -> [Received] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Received.self, from: Data($0.utf8)) }
    }

    /// Two identity replicas on `database`, sending through the SMTP server on `smtpPort`.
    private func withReplicas(
        _ database: TestDatabase, smtpPort: Int, _ body: @Sendable ([ChildProcess], [ConnectClient]) async throws -> Void
    ) async throws {
        let base = NSTemporaryDirectory() + "identity-replicas-\(UUID().uuidString)"
        let arguments = ["--port", "0", "--scrypt-log-n", "10", "--smtp-url", "smtp+plain://127.0.0.1:\(smtpPort)"] + database.serviceArguments
        try await withStarted(ChildProcess(service: "identity", arguments: arguments + ["--data-dir", base + "/one"])) { one in
            try await withStarted(ChildProcess(service: "identity", arguments: arguments + ["--data-dir", base + "/two"])) { two in
                try await withStarted(ConnectClient(upstream: .url("http://127.0.0.1:\(one.port)"))) { first in
                    try await withStarted(ConnectClient(upstream: .url("http://127.0.0.1:\(two.port)"))) { second in
                        try await body([one, two], [first, second])
                    }
                }
            }
        }
    }

    @Test func twoReplicasDeliverEveryOutboxEmailExactlyOnce() async throws {
        let path = NSTemporaryDirectory() + "mailbox-\(UUID().uuidString).jsonl"
        try await withStarted(ChildProcess(pythonFixture: "smtp_server.py", arguments: ["--port", "0", "--mailbox", path])) { smtp in
            try await withStarted(TestDatabase.start(.postgres, service: "identity")) { database in
                try await withReplicas(database, smtpPort: smtp.port) { _, clients in
                    // 40 registrations at once, half through each replica: each queues one email,
                    // and both replicas' senders work the one outbox.
                    let addresses = (0..<40).map { "replica-\($0)@example.com" }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (index, address) in addresses.enumerated() {
                            group.addTask {
                                _ = try await clients[index % 2].call(
                                    Identity.register, RegisterRequest(email: address, password: "replicated passphrase", fullName: "R"))
                            }
                        }
                        try await group.waitForAll()
                    }
                    let delivered = try await eventually(timeout: .seconds(30)) { mailbox(path).count >= addresses.count }
                    #expect(delivered, "\(mailbox(path).count) of \(addresses.count) emails arrived")
                    // A moment more for a duplicate to show, if one were coming.
                    try await Task.sleep(for: .seconds(2))
                    let received = mailbox(path).flatMap(\.to)
                    #expect(received.count == addresses.count, "\(received.count) emails for \(addresses.count) registrations")
                    #expect(Set(received) == Set(addresses))
                    #expect(try await database.count("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL") == addresses.count)
                }
            }
        }
    }

    @Test func aSigningKeyRotationReachesEveryReplica() async throws {
        let path = NSTemporaryDirectory() + "mailbox-\(UUID().uuidString).jsonl"
        try await withStarted(ChildProcess(pythonFixture: "smtp_server.py", arguments: ["--port", "0", "--mailbox", path])) { smtp in
            try await withStarted(TestDatabase.start(.postgres, service: "identity")) { database in
                try await withReplicas(database, smtpPort: smtp.port) { _, clients in
                    let email = "rotation@example.com"
                    _ = try await clients[0].call(Identity.register, RegisterRequest(email: email, password: "replicated passphrase", fullName: "R"))
                    try await eventually(timeout: .seconds(15)) { mailbox(path).count == 1 }
                    let message = try #require(mailbox(path).first?.data)
                    let token = try #require(
                        message.range(of: #"token=[A-Za-z0-9_-]+"#, options: .regularExpression).map { message[$0].dropFirst(6) })
                    _ = try await clients[1].call(Identity.verifyEmail, VerifyEmailRequest(token: String(token)))
                    let before = try await clients[0].call(Identity.login, LoginRequest(email: email, password: "replicated passphrase"))
                    let oldKey = try #require(AccessTokenVerifier.keyID(of: before.accessToken))

                    // The operator's command, against the shared database, while both replicas serve.
                    let rotated = try await ExternalCommand.run(
                        [ChildProcess.productsDirectory.appendingPathComponent("identity").path, "rotate-signing-keys"] + database.serviceArguments,
                        timeout: .seconds(30))
                    #expect(rotated.status == 0, "\(rotated.stderr)")
                    for client in clients {
                        let signsWithNewKey = try await eventually(timeout: .seconds(10)) {
                            let login = try await client.call(Identity.login, LoginRequest(email: email, password: "replicated passphrase"))
                            return AccessTokenVerifier.keyID(of: login.accessToken) != oldKey
                        }
                        #expect(signsWithNewKey)
                        // The old key stays published, so tokens it signed keep verifying.
                        #expect(try await client.call(Identity.getSigningKeys, Empty()).keys.map(\.kid).contains(oldKey))
                    }
                }
            }
        }
    }

    @Test func aUserChangedThroughOneReplicaIsSeenThroughTheOther() async throws {
        let path = NSTemporaryDirectory() + "mailbox-\(UUID().uuidString).jsonl"
        try await withStarted(ChildProcess(pythonFixture: "smtp_server.py", arguments: ["--port", "0", "--mailbox", path])) { smtp in
            try await withStarted(TestDatabase.start(.postgres, service: "identity")) { database in
                try await withReplicas(database, smtpPort: smtp.port) { _, clients in
                    let email = "profile@example.com"
                    _ = try await clients[0].call(Identity.register, RegisterRequest(email: email, password: "replicated passphrase", fullName: "P"))
                    try await eventually(timeout: .seconds(15)) { mailbox(path).count == 1 }
                    let message = try #require(mailbox(path).first?.data)
                    let token = try #require(
                        message.range(of: #"token=[A-Za-z0-9_-]+"#, options: .regularExpression).map { message[$0].dropFirst(6) })
                    _ = try await clients[0].call(Identity.verifyEmail, VerifyEmailRequest(token: String(token)))
                    let login = try await clients[0].call(Identity.login, LoginRequest(email: email, password: "replicated passphrase"))
                    let auth = ConnectClient.CallOptions(bearerToken: login.accessToken)
                    // Replica two has the user cached before the change.
                    #expect(try await clients[1].call(Identity.getMe, Empty(), options: auth).onboardingState == .needsBusinessProfile)
                    let profile = BusinessProfile(
                        companyName: "Acme", companySize: "COMPANY_SIZE_11_TO_50", country: "DE", jobTitle: "CTO", useCase: "analytics")
                    _ = try await clients[0].call(Identity.updateBusinessProfile, profile, options: auth)
                    let seen = try await eventually(timeout: .seconds(3)) {
                        try await clients[1].call(Identity.getMe, Empty(), options: auth).onboardingState == .complete
                    }
                    #expect(seen, "replica two kept serving the user as it was before the change")
                }
            }
        }
    }
}
