import ConnectTransport
import Contracts
import Foundation
import RPCCore
import TestSupport
import Testing

/// AWS Marketplace's subscription events reaching marketplace-link's SNS endpoint: from the
/// simulator as SNS delivers them, and hand-made messages signed by Python's `cryptography` with
/// the simulator's SNS key (SignatureVersion 1 and 2), tampered with or not.
@Suite(.timeLimit(.minutes(3))) struct NotificationTests {
    @Test(arguments: StorageBackend.allCases) func theSimulatorsEventsConfirmTheTopicRefreshEntitlementsAndCancelTheLink(backend: StorageBackend)
        async throws
    {
        try await withStarted(JourneyHarness.start(notifications: true, backend: backend)) { system in
            // The SubscriptionConfirmation is confirmed by fetching its SubscribeURL from the simulator.
            #expect(try await eventually(timeout: .seconds(20)) { try await system.linkSQL("SELECT count(*) FROM sns_subscription") == "1" })

            let customer = try await SimulatorProcess.subscribe(baseURL: system.simulator.baseURL, identity: "alice", offer: "offer-a")
            let token = try await SimulatorProcess.setUp(baseURL: system.simulator.baseURL, identity: "alice", customer: customer)
            let accepted = try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token))
            let (user, organization) = try await system.adminWithOrganization()
            let auth = ConnectClient.CallOptions(bearerToken: user.accessToken)
            let bound = try await system.linkClient.call(
                MarketplaceLink.bindOrganization,
                BindOrganizationRequest(claim: try #require(accepted.claim), organizationId: organization.id),
                options: auth)
            #expect(bound.state == .active)

            // The seller amends the contract: entitlement-updated, then the entitlements fetched from AWS.
            try await system.simulator.amend(offer: "offer-a", dimensions: ["seats": 20, "storage": 500, "compute": 7])
            #expect(
                try await eventually(timeout: .seconds(20)) {
                    try await system.billingStatus(organization.id, auth).offer?.entitlements["seats"] == "20"
                })
            // ...and organization's billing record carries the new contract.
            #expect(
                try await eventually(timeout: .seconds(10)) {
                    try await system.organizationClient.call(
                        Organizations.getBillingAccount, OrganizationRef(organizationId: organization.id),
                        options: auth
                    ).contract?.dimensions["seats"] == "20"
                })

            // The buyer cancels: unsubscribe-pending, then unsubscribe-success; the organization is no longer billed through AWS.
            try await system.simulator.cancel(identity: "alice", customer: customer)
            #expect(try await eventually(timeout: .seconds(20)) { try await system.billingStatus(organization.id, auth).state == .cancelled })
            #expect(try await eventually(timeout: .seconds(10)) { try await system.billingProvider(organization.id, auth) == BillingProvider.none })
            let events = try await system.linkSQL("SELECT action || ':' || state FROM sns_message WHERE type = 'Notification' ORDER BY sent_at")
            #expect(
                events.split(separator: "\n") == [
                    "subscribe-success:APPLIED", "entitlement-updated:APPLIED", "unsubscribe-pending:APPLIED", "unsubscribe-success:APPLIED"
                ])
            // The claim of an ended subscription says so, and cannot be used any more.
            #expect(try await system.linkClient.call(MarketplaceLink.getClaim, ClaimRequest(claim: try #require(accepted.claim))).state == .ended)
            let (_, another) = try await system.adminWithOrganization("Another Co")
            await #expect(
                throws: RPCError(.failedPrecondition, "this subscription was cancelled in AWS Marketplace: subscribe to the offer again to link it")
            ) {
                try await system.linkClient.call(
                    MarketplaceLink.bindOrganization,
                    BindOrganizationRequest(claim: try #require(accepted.claim), organizationId: another.id), options: auth)
            }
        }
    }

    @Test(arguments: StorageBackend.allCases) func onlySignedMessagesFromTrustedHostsOnOurTopicAreTaken(backend: StorageBackend) async throws {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let sns = SNSMessages(system: system)
            let customer = try await SimulatorProcess.subscribe(baseURL: system.simulator.baseURL, identity: "alice", offer: "offer-a")
            let token = try await SimulatorProcess.setUp(baseURL: system.simulator.baseURL, identity: "alice", customer: customer)

            // A subscribe-fail signed with SignatureVersion 1 (SHA1withRSA) arrives before the registration: kept.
            let fail = try await sns.signed(sns.notification("subscribe-fail", customer: customer), version: "1")
            #expect(try await sns.post(fail) == (200, "accepted"))
            #expect(try await system.linkSQL("SELECT state FROM sns_message") == "WAITING")

            // Refused, and nothing recorded: tampered, unsigned, an unknown signature version, a certificate
            // on an untrusted host, a key that is not the certificate's, an unknown topic, a SubscribeURL
            // on an untrusted host.
            let pending = try await sns.signed(sns.notification("unsubscribe-pending", customer: customer), version: "2")
            var tampered = pending
            tampered["Message"] = sns.notification("unsubscribe-success", customer: customer)["Message"]
            #expect(try await sns.post(tampered) == (403, "refused: the signature does not match the message"))
            #expect(try await sns.post(pending.filter { $0.key != "Signature" }) == (400, "not an Amazon SNS message: field Signature is missing"))
            #expect(
                try await sns.post(pending.merging(["SignatureVersion": "3"]) { $1 })
                    == (403, "refused: SignatureVersion must be 1 or 2, got '3'"))
            var untrustedHost = sns.notification("unsubscribe-pending", customer: customer)
            untrustedHost["SigningCertURL"] = "http://127.0.0.1:1/SimpleNotificationService-simulator.pem"
            #expect(
                try await sns.post(try await sns.signed(untrustedHost, version: "2"))
                    == (403, "refused: SigningCertURL is not a certificate on a trusted SNS host"))
            var otherFile = sns.notification("unsubscribe-pending", customer: customer)
            otherFile["SigningCertURL"] = system.simulator.baseURL + "/healthz.pem"
            #expect(
                try await sns.post(try await sns.signed(otherFile, version: "2"))
                    == (403, "refused: SigningCertURL is not a certificate on a trusted SNS host"))
            let foreignKey = try await sns.signed(
                sns.notification("unsubscribe-pending", customer: customer), version: "2", key: try await sns.foreignKey())
            #expect(try await sns.post(foreignKey) == (403, "refused: the signature does not match the message"))
            var otherTopic = sns.notification("unsubscribe-pending", customer: customer)
            otherTopic["TopicArn"] = SimulatorProcess.topicArn(product: "prod-someone-else")
            #expect(
                try await sns.post(try await sns.signed(otherTopic, version: "2"))
                    == (403, "refused: topic \(otherTopic["TopicArn"]!) is not one this endpoint subscribes to"))
            var confirmation = sns.confirmation()
            confirmation["SubscribeURL"] = "http://127.0.0.1:1/sns/confirm?Token=x"
            #expect(
                try await sns.post(try await sns.signed(confirmation, version: "2")) == (403, "refused: SubscribeURL is not on a trusted SNS host"))
            #expect(try await sns.post(["Type": "Notification"]) == (400, "not an Amazon SNS message: field MessageId is missing"))
            #expect(try await system.linkSQL("SELECT count(*) FROM sns_message") == "1")

            // A redelivery changes nothing.
            #expect(try await sns.post(fail) == (200, "duplicate: already taken"))

            // The buyer registers: the kept subscribe-fail applies, and the registration is refused.
            await #expect(
                throws: RPCError(
                    .failedPrecondition,
                    "AWS Marketplace reports that this subscription failed: subscribe to the offer again in AWS Marketplace, then click \"Set up your account\""
                )
            ) {
                try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token))
            }
            #expect(try await system.linkSQL("SELECT state FROM sns_message") == "APPLIED")
            #expect(try await system.linkSQL("SELECT count(*) FROM link") == "0")
        }
    }

    @Test(arguments: StorageBackend.allCases) func eventsOutOfOrderEndTheLinkOnceAndClearTheOrganizationsBilling(backend: StorageBackend) async throws
    {
        try await withStarted(JourneyHarness.start(backend: backend)) { system in
            let sns = SNSMessages(system: system)
            let customer = try await SimulatorProcess.subscribe(baseURL: system.simulator.baseURL, identity: "carol", offer: "offer-c")
            let token = try await SimulatorProcess.setUp(baseURL: system.simulator.baseURL, identity: "carol", customer: customer)
            let accepted = try await system.linkClient.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token))
            let (user, organization) = try await system.adminWithOrganization()
            let auth = ConnectClient.CallOptions(bearerToken: user.accessToken)
            _ = try await system.linkClient.call(
                MarketplaceLink.bindOrganization,
                BindOrganizationRequest(claim: try #require(accepted.claim), organizationId: organization.id), options: auth)

            // unsubscribe-success arrives before the unsubscribe-pending SNS sent a minute earlier.
            let now = Date()
            let success = try await sns.signed(sns.notification("unsubscribe-success", customer: customer, at: now), version: "2")
            let pending = try await sns.signed(sns.notification("unsubscribe-pending", customer: customer, at: now - 60), version: "1")
            #expect(try await sns.post(success) == (200, "accepted"))
            #expect(try await sns.post(pending) == (200, "accepted"))
            #expect(try await system.billingStatus(organization.id, auth).state == .cancelled)
            #expect(
                try await system.linkSQL("SELECT action || ':' || state FROM sns_message ORDER BY received_at")
                    .split(separator: "\n") == ["unsubscribe-success:APPLIED", "unsubscribe-pending:IGNORED"])
            #expect(try await eventually(timeout: .seconds(10)) { try await system.billingProvider(organization.id, auth) == BillingProvider.none })
            #expect(try await eventually { try await system.linkSQL("SELECT CASE WHEN pending_step IS NULL THEN 1 ELSE 0 END FROM link") == "1" })
            // A signed notification on our topic that is not a subscription event: taken (SNS would
            // send it forever otherwise) and kept as IGNORED.
            var strange = sns.notification("unsubscribe-success", customer: customer)
            strange["Message"] = "not an event"
            let signedStrange = try await sns.signed(strange, version: "2")
            #expect(try await sns.post(signedStrange) == (200, "accepted"))
            #expect(try await system.linkSQL("SELECT state FROM sns_message WHERE message_id = '\(strange["MessageId"]!)'") == "IGNORED")
            // The organization may link another contract now.
            #expect(try await system.linkSQL("SELECT count(*) FROM link WHERE state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING')") == "0")
        }
    }
}

extension JourneyHarness {
    /// One value (or rows, one per line) from marketplace-link's database, through its backend's own client.
    func linkSQL(_ sql: String) async throws -> String {
        try await linkStore.query(sql)
    }

    /// How organization says the organization is billed.
    func billingProvider(_ organizationID: String, _ options: ConnectClient.CallOptions) async throws -> BillingProvider {
        try await organizationClient.call(Organizations.getBillingAccount, OrganizationRef(organizationId: organizationID), options: options).provider
    }

    func billingStatus(_ organizationID: String, _ options: ConnectClient.CallOptions) async throws -> BillingStatus {
        try await linkClient.call(MarketplaceLink.getBillingStatus, BillingStatusRequest(organizationId: organizationID), options: options)
    }
}

/// Hand-made SNS messages for marketplace-link's endpoint, as the simulator's SNS would send them.
struct SNSMessages {
    let system: JourneyHarness

    func notification(_ action: String, customer: String, at: Date = Date()) -> [String: String] {
        let message =
            #"{"action":"\#(action)","customer-identifier":"\#(customer)","offer-identifier":"offer","product-code":"\#(SimulatorProcess.product)"}"#
        return [
            "Type": "Notification", "MessageId": UUID().uuidString.lowercased(), "TopicArn": SimulatorProcess.topicArn(),
            "Message": message, "Timestamp": at.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            "SigningCertURL": system.simulator.snsCertificateURL
        ]
    }

    func confirmation() -> [String: String] {
        [
            "Type": "SubscriptionConfirmation", "MessageId": UUID().uuidString.lowercased(), "TopicArn": SimulatorProcess.topicArn(),
            "Message": "You have chosen to subscribe.", "Token": "token", "Timestamp": Date().formatted(.iso8601),
            "SubscribeURL": system.simulator.baseURL + "/sns/confirm?Token=token", "SigningCertURL": system.simulator.snsCertificateURL
        ]
    }

    /// Signs with Python's `cryptography` (tests/Fixtures/sns_sign.py), by default with the simulator's key.
    func signed(_ message: [String: String], version: String, key: String? = nil) async throws -> [String: String] {
        let input = try temporaryFile(try JSONSerialization.data(withJSONObject: [["version": version, "message": message]]))
        let result = try await ExternalCommand.run(
            ["python3", Self.fixture("sns_sign.py"), key ?? system.simulator.snsSigningKeyPath, input],
            timeout: .seconds(20))
        guard result.status == 0 else { throw ProcessFailure("sns_sign.py: \(result.stderr)") }
        let signed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: String]]
        return try #require(signed?.first)
    }

    /// An RSA key that is not the simulator's.
    func foreignKey() async throws -> String {
        let path = NSTemporaryDirectory() + "foreign-\(UUID().uuidString).key"
        let result = try await ExternalCommand.run(["openssl", "genrsa", "-out", path, "2048"], timeout: .seconds(30))
        guard result.status == 0 else { throw ProcessFailure("openssl: \(result.stderr)") }
        return path
    }

    /// POSTs a message as SNS does (HTTP/1.1, text/plain, x-amz-sns-message-type) with curl; returns
    /// the status and the first line of the answer.
    func post(_ message: [String: String]) async throws -> (Int, String) {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]), as: UTF8.self)
        var extra = ["--http1.1"]
        if let type = message["Type"] { extra += ["-H", "x-amz-sns-message-type: \(type)"] }
        let response = try await Curl.post(system.linkURL + "/marketplace/sns", body: body, contentType: "text/plain; charset=UTF-8", extra: extra)
        return (response.status, response.body.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
    }
}
