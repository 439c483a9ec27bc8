import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// identity and organization as real processes: a user signs up with identity, organization
/// verifies identity's tokens, and a service calls the internal methods with its credential.
@Suite(.serialized, .timeLimit(.minutes(3))) struct OrganizationProcessTests {
    @Test func organizationTrustsIdentitysTokensAndServiceCredentials() async throws {
        let base = NSTemporaryDirectory() + "org-e2e-\(UUID().uuidString)"
        let secret = "e2e-marketplace-link-secret"
        let digest = try await ExternalCommand.run(["bash", "-c", "printf '%s' '\(secret)' | sha256sum | cut -d' ' -f1"], timeout: .seconds(10))
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await withStarted(
            ChildProcess(
                service: "identity", arguments: ["--port", "0", "--data-dir", base + "/identity", "--scrypt-log-n", "12"])
        ) { identity in
            try await withStarted(
                ChildProcess(
                    service: "organization",
                    arguments: [
                        "--port", "0", "--data-dir", base + "/organization", "--identity-url", "http://127.0.0.1:\(identity.port)",
                        "--trusted-services", "marketplace-link=\(digest)"
                    ])
            ) { organization in
                let identityClient = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(identity.port)"))
                let users = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(organization.port)"))
                let linkService = try ConnectClient(
                    configuration: .init(
                        baseURL: "http://127.0.0.1:\(organization.port)",
                        credential: ServiceCredential(serviceName: "marketplace-link", secret: secret)))
                defer {
                    Task {
                        await identityClient.close()
                        await users.close()
                        await linkService.close()
                    }
                }

                // Sign up through identity, reading the link from its maildrop.
                let email = "org-e2e@example.com"
                _ = try await identityClient.call(Identity.register, RegisterRequest(email: email, password: "organized passphrase", fullName: "O"))
                let token = try await MaildropReader(directory: base + "/identity/maildrop").linkToken(to: email)
                _ = try await identityClient.call(Identity.verifyEmail, VerifyEmailRequest(token: token))
                let login = try await identityClient.call(Identity.login, LoginRequest(email: email, password: "organized passphrase"))
                let auth = ConnectClient.CallOptions(bearerToken: login.accessToken)

                let created = try await users.call(Organizations.createOrganization, CreateOrganizationRequest(name: "Process Co"), options: auth)
                #expect(created.role == .admin && created.canLinkBilling)
                #expect(try await users.call(Organizations.listMyOrganizations, Empty(), options: auth).organizations.map(\.id) == [created.id])

                // The internal method: refused to the user, answered to the service (also through curl).
                await #expect(throws: RPCError.self) {
                    try await users.call(Organizations.checkAdmin, MemberRef(organizationId: created.id, userId: login.user.id), options: auth)
                }
                let check = try await Curl.post(
                    "http://127.0.0.1:\(organization.port)/organization.v1.OrganizationService/CheckAdmin",
                    body: #"{"organizationId":"\#(created.id)","userId":"\#(login.user.id)"}"#,
                    extra: ["--http2-prior-knowledge", "-H", "x-service-credential: marketplace-link:\(secret)"])
                #expect(check.status == 200 && check.body == #"{"isAdmin":true,"role":"ADMIN","canReadBilling":true}"#, "\(check.body)")

                _ = try await linkService.call(
                    Organizations.setBillingAccount,
                    SetBillingAccountRequest(
                        organizationId: created.id, provider: .awsMarketplace, awsAccountId: "210987654321", linkId: "link-e2e",
                        contract: ContractSummary(productCode: "prod", offerId: "offer"), linkedBy: login.user.id))
                let billing = try await users.call(Organizations.getBillingAccount, OrganizationRef(organizationId: created.id), options: auth)
                #expect(billing.provider == .awsMarketplace && billing.linkId == "link-e2e")
            }
        }
    }
}
