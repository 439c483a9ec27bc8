import ConnectTransport
import Contracts
import Foundation
import NIOCore
import RPCCore
import TestSupport
import Testing

/// The whole journey against the four executables as real processes: aws-marketplace-sim's
/// "Set up your account", identity's sign-up, organization's new organization, marketplace-link's
/// binding, and the buyer cancelling in AWS Marketplace, delivered as signed SNS messages.
@Suite(.serialized, .timeLimit(.minutes(3))) struct JourneyProcessTests {
    static let password = "correct horse battery staple"
    @Test func fromSetUpYourAccountToBillingAndBackAcrossTheExecutables() async throws {
        let base = NSTemporaryDirectory() + "journey-e2e-\(UUID().uuidString)"
        let secret = "e2e-link-secret"
        try await withStarted(
            ChildProcess(
                service: "identity", arguments: ["--port", "0", "--data-dir", base + "/identity", "--scrypt-log-n", "12"])
        ) { identity in
            try await withStarted(
                ChildProcess(
                    service: "organization",
                    arguments: [
                        "--port", "0", "--data-dir", base + "/organization", "--identity-url", "http://127.0.0.1:\(identity.port)",
                        "--trusted-services", "marketplace-link=\(TrustedServices.digest(ofSecret: secret))"
                    ])
            ) { organization in
                let simulatorURL = "http://127.0.0.1:\(try await freePort())"
                try await withStarted(
                    ChildProcess(
                        service: "marketplace-link",
                        arguments: [
                            "--port", "0", "--data-dir", base + "/link", "--identity-url", "http://127.0.0.1:\(identity.port)",
                            "--organization-url", "http://127.0.0.1:\(organization.port)", "--aws-marketplace-endpoint", simulatorURL,
                            "--service-secret", secret, "--product-code", SimulatorProcess.product, "--sns-trusted-origins", simulatorURL
                        ],
                        environment: ["AWS_ACCESS_KEY_ID": SimulatorProcess.sellerAccessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.sellerSecret]
                    )
                ) { link in
                    try await withStarted(
                        SimulatorProcess.start(
                            port: Int(simulatorURL.split(separator: ":").last!)!,
                            notificationURL: "http://127.0.0.1:\(link.port)/marketplace/sns")
                    ) { simulator in
                        let identityClient = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(identity.port)"))
                        let organizationClient = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(organization.port)"))
                        let linkClient = try ConnectClient(configuration: .init(baseURL: "http://127.0.0.1:\(link.port)"))
                        defer {
                            Task {
                                await identityClient.close()
                                await organizationClient.close()
                                await linkClient.close()
                            }
                        }
                        let linkURL = "http://127.0.0.1:\(link.port)/marketplacelink.v1.MarketplaceLinkService/"

                        // In AWS Marketplace: subscribe, then "Set up your account"; the web front posts the token on (curl, HTTP/2).
                        let customer = try await SimulatorProcess.subscribe(baseURL: simulator.baseURL, identity: "alice", offer: "offer-a")
                        let registrationToken = try await SimulatorProcess.setUp(baseURL: simulator.baseURL, identity: "alice", customer: customer)
                        let accepted = try await Curl.post(
                            linkURL + "AcceptRegistration", body: #"{"registrationToken":"\#(registrationToken)"}"#,
                            extra: ["--http2-prior-knowledge"])
                        #expect(accepted.status == 200 && accepted.httpVersion == "2", "\(accepted.body)")
                        let claim = try #require(try ProtoJSON.decode(AcceptRegistrationResponse.self, from: ByteBuffer(string: accepted.body)).claim)

                        // A new user signs up, verifies the email, creates an organization and binds the contract to it.
                        let email = "buyer-e2e@example.com"
                        _ = try await identityClient.call(
                            Identity.register, RegisterRequest(email: email, password: Self.password, fullName: "Buyer"))
                        let verification = try await MaildropReader(directory: base + "/identity/maildrop").linkToken(to: email)
                        _ = try await identityClient.call(Identity.verifyEmail, VerifyEmailRequest(token: verification))
                        let login = try await identityClient.call(Identity.login, LoginRequest(email: email, password: Self.password))
                        let auth = ConnectClient.CallOptions(bearerToken: login.accessToken)
                        let created = try await organizationClient.call(
                            Organizations.createOrganization, CreateOrganizationRequest(name: "Process Buyer Co"), options: auth)
                        let bound = try await linkClient.call(
                            MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: created.id),
                            options: auth)
                        #expect(bound.state == .active)
                        let billing = try await organizationClient.call(
                            Organizations.getBillingAccount, OrganizationRef(organizationId: created.id), options: auth)
                        #expect(billing.provider == .awsMarketplace && billing.linkId == bound.linkId && billing.awsAccountId == "********1111")
                        let page = try await Curl.post(
                            linkURL + "GetBillingStatus", body: #"{"organizationId":"\#(created.id)"}"#,
                            extra: ["--http2-prior-knowledge", "-H", "authorization: Bearer \(login.accessToken)"])
                        #expect(
                            page.status == 200 && page.body.contains(#""state":"ACTIVE""#) && page.body.contains(#""awsAccountId":"********1111""#),
                            "\(page.body)")

                        // The buyer cancels in AWS Marketplace: SNS tells marketplace-link, which clears organization's billing.
                        try await simulator.cancel(identity: "alice", customer: customer)
                        #expect(
                            try await eventually(timeout: .seconds(30)) {
                                try await organizationClient.call(
                                    Organizations.getBillingAccount, OrganizationRef(organizationId: created.id), options: auth
                                )
                                .provider == BillingProvider.none
                            })
                        let status = try await linkClient.call(
                            MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: created.id), options: auth)
                        #expect(status.state == .cancelled)
                        #expect(
                            !link.output.contains(registrationToken) && !link.output.contains(claim) && !link.output.contains(login.accessToken),
                            "secrets must never be logged")
                    }
                }
            }
        }
    }
}
