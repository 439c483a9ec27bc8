import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// Two organization processes on one PostgreSQL database, as replicas behind a load balancer
/// are: the rules hold across them and a change on one reaches the other's role cache.
@Suite(.serialized, .timeLimit(.minutes(4))) struct ReplicatedOrganizationTests {
    static let organizationSecret = "replicas-organization-secret"

    /// identity (a process) and two organization replicas on `database`; `body` gets a client per replica.
    private func withReplicas(
        _ database: TestDatabase, _ body: @Sendable (_ identity: ChildProcess, _ base: String, [ConnectClient]) async throws -> Void
    ) async throws {
        let base = NSTemporaryDirectory() + "replicas-\(UUID().uuidString)"
        let digest = try await ExternalCommand.run(
            ["bash", "-c", "printf '%s' '\(Self.organizationSecret)' | sha256sum | cut -d' ' -f1"], timeout: .seconds(10)
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await withStarted(
            ChildProcess(
                service: "identity",
                arguments: ["--port", "0", "--data-dir", base + "/identity", "--scrypt-log-n", "10", "--trusted-services", "organization=\(digest)"])
        ) { identity in
            let replicaArguments = [
                "--port", "0", "--identity-url", "http://127.0.0.1:\(identity.port)", "--service-secret", Self.organizationSecret
            ]
            try await withStarted(
                ChildProcess(service: "organization", arguments: replicaArguments + database.serviceArguments + ["--data-dir", base + "/one"])
            ) { one in
                try await withStarted(
                    ChildProcess(service: "organization", arguments: replicaArguments + database.serviceArguments + ["--data-dir", base + "/two"])
                ) { two in
                    try await withStarted(ConnectClient(upstream: .url("http://127.0.0.1:\(one.port)"))) { first in
                        try await withStarted(ConnectClient(upstream: .url("http://127.0.0.1:\(two.port)"))) { second in
                            try await body(identity, base, [first, second])
                        }
                    }
                }
            }
        }
    }

    /// A signed-up, verified, signed-in user of the identity process.
    private func signedUp(_ name: String, identity: ChildProcess, base: String) async throws -> LoginResponse {
        try await withStarted(ConnectClient(upstream: .url("http://127.0.0.1:\(identity.port)"))) { client in
            let email = "\(name)-\(UUID().uuidString.prefix(6).lowercased())@example.com"
            _ = try await client.call(Identity.register, RegisterRequest(email: email, password: "replicated passphrase", fullName: name))
            let token = try await MaildropReader(directory: base + "/identity/maildrop").linkToken(to: email)
            _ = try await client.call(Identity.verifyEmail, VerifyEmailRequest(token: token))
            return try await client.call(Identity.login, LoginRequest(email: email, password: "replicated passphrase"))
        }
    }

    @Test func twoAdminsDemotingEachOtherThroughDifferentReplicasLeaveOneAdmin() async throws {
        try await withStarted(TestDatabase.start(.postgres, service: "organization")) { database in
            try await withReplicas(database) { identity, base, replicas in
                let ada = try await signedUp("ada", identity: identity, base: base)
                let bob = try await signedUp("bob", identity: identity, base: base)
                let asAda = ConnectClient.CallOptions(bearerToken: ada.accessToken)
                let asBob = ConnectClient.CallOptions(bearerToken: bob.accessToken)
                for round in 0..<8 {
                    // Ada creates through one replica, invites Bob as ADMIN; Bob accepts through the other.
                    let organization = try await replicas[round % 2].call(
                        Organizations.createOrganization, CreateOrganizationRequest(name: "Race \(round)"), options: asAda
                    ).id
                    let ref = OrganizationRef(organizationId: organization)
                    _ = try await replicas[round % 2].call(
                        Organizations.addMember, MemberRequest(organizationId: organization, userId: bob.user.id, role: .admin), options: asAda)
                    _ = try await replicas[(round + 1) % 2].call(Organizations.acceptInvitation, ref, options: asBob)
                    // Both replicas have each admin's role cached before the race.
                    for replica in replicas {
                        _ = try await replica.call(Organizations.listAuditEvents, ref, options: asAda)
                        _ = try await replica.call(Organizations.listAuditEvents, ref, options: asBob)
                    }

                    async let adaDemotesBob: RPCError? = outcome {
                        _ = try await replicas[0].call(
                            Organizations.changeMemberRole, MemberRequest(organizationId: organization, userId: bob.user.id, role: .member),
                            options: asAda)
                    }
                    async let bobDemotesAda: RPCError? = outcome {
                        _ = try await replicas[1].call(
                            Organizations.changeMemberRole, MemberRequest(organizationId: organization, userId: ada.user.id, role: .member),
                            options: asBob)
                    }
                    let failures = await [adaDemotesBob, bobDemotesAda]
                    #expect(failures.compactMap { $0 }.count == 1, "round \(round): \(failures)")
                    #expect(failures.compactMap { $0 }.allSatisfy { [.permissionDenied, .failedPrecondition].contains($0.code) })
                    let admins = try await database.count(
                        "SELECT count(*) FROM membership WHERE organization_id = '\(organization)' AND role = 'ADMIN'")
                    #expect(admins == 1, "round \(round)")

                    // The demoted one is refused an admin's method on both replicas, cached roles or not.
                    let demoted = failures[0] == nil ? asBob : asAda
                    for replica in replicas {
                        let refused = try await eventually(timeout: .seconds(3)) {
                            await outcome { _ = try await replica.call(Organizations.listAuditEvents, ref, options: demoted) }?.code
                                == .permissionDenied
                        }
                        #expect(refused, "round \(round): a replica kept a demoted admin's role")
                    }
                }
            }
        }
    }

    @Test func aUserJoinsAtMostTwentyFiveOrganizationsAcrossReplicas() async throws {
        try await withStarted(TestDatabase.start(.postgres, service: "organization")) { database in
            try await withReplicas(database) { identity, base, replicas in
                let ada = try await signedUp("ada", identity: identity, base: base)
                let asAda = ConnectClient.CallOptions(bearerToken: ada.accessToken)
                // 40 creations at once, spread over both replicas: exactly 25 succeed.
                let outcomes = await withTaskGroup(of: RPCError?.self) { group in
                    for index in 0..<40 {
                        group.addTask {
                            await outcome {
                                _ = try await replicas[index % 2].call(
                                    Organizations.createOrganization, CreateOrganizationRequest(name: "Org \(index)"), options: asAda)
                            }
                        }
                    }
                    return await group.reduce(into: [RPCError?]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 == nil }.count == 25)
                #expect(outcomes.compactMap { $0 }.allSatisfy { $0.code == .resourceExhausted })
                #expect(try await database.count("SELECT count(*) FROM membership WHERE user_id = '\(ada.user.id)'") == 25)
            }
        }
    }
}

/// The error a call ended with, nil when it succeeded.
private func outcome(_ call: () async throws -> Void) async -> RPCError? {
    do {
        try await call()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(.unknown, "\(error)")
    }
}
