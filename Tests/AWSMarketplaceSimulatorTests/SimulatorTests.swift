import AWSMarketplace
import Foundation
import TestSupport
import Testing

/// aws-marketplace-sim as a real process: the buyer's pages, and the seller APIs against boto3
/// and against our own client.
@Suite(.timeLimit(.minutes(3))) struct SimulatorTests {
    static let seller = AWSCredentials(accessKeyID: SimulatorProcess.sellerAccessKeyID, secretAccessKey: SimulatorProcess.sellerSecret)
    static let product = SimulatorProcess.product

    static func seed() throws -> String { try SimulatorProcess.seed() }

    /// Runs `body` with a simulator process, its base URL and its data directory.
    private func withSimulator<Result>(
        notificationURL: String = "", maildrop: String = "", _ body: (ChildProcess, String, String) async throws -> Result
    ) async throws -> Result {
        try await withStarted(SimulatorProcess.start(notificationURL: notificationURL, maildrop: maildrop)) { sim in
            try await body(sim.process, sim.baseURL, sim.directory)
        }
    }

    /// Subscribes as `identity` to `offer` and clicks "Set up your account"; returns the token.
    private func subscribeAndSetUp(_ base: String, identity: String, offer: String) async throws -> String {
        try await SimulatorProcess.subscribeAndSetUp(baseURL: base, identity: identity, offer: offer)
    }

    private func client(_ base: String, credentials: AWSCredentials = seller) -> (MarketplaceMeteringClient, MarketplaceEntitlementClient) {
        let transport = AWSJSONClient(
            configuration: .init(
                endpoint: URL(string: base + "/")!, region: "us-east-1", credentials: credentials,
                timeout: .seconds(5), maxAttempts: 4, baseDelay: .milliseconds(10),
                maxDelay: .milliseconds(50)))
        return (MarketplaceMeteringClient(transport: transport), MarketplaceEntitlementClient(transport: transport))
    }

    @Test func buyerWithoutPermissionsIsRefusedAndOneWithThemReachesTheSetupForm() async throws {
        try await withSimulator { sim, base, _ in
            let refused = try await Curl.get(base + "/buyer/offers/offer-a?as=bob")
            #expect(refused.status == 403)
            #expect(refused.body.contains("AWSMarketplaceManageSubscriptions"))
            let offer = try await Curl.get(base + "/buyer/offers/offer-a?as=alice")
            #expect(offer.status == 200)
            #expect(offer.body.contains("ClickHouse Cloud - Committed Contract") && offer.body.contains("120000"))

            let token = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
            #expect(token.count >= 43)
            let (metering, _) = client(base)
            let customer = try await metering.resolveCustomer(registrationToken: token)
            #expect(customer.customerAWSAccountID == "111111111111")
            #expect(customer.productCode == Self.product)
            // Resolving again gives the same customer; a second "Set up" gives a new token for the same customer.
            #expect(try await metering.resolveCustomer(registrationToken: token) == customer)
            let second = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
            #expect(second != token)
            #expect(try await metering.resolveCustomer(registrationToken: second).customerIdentifier == customer.customerIdentifier)
            // Actions instead of managed policies work too.
            #expect(try await Curl.get(base + "/buyer/offers/offer-c?as=carol").status == 200)
        }
    }

    @Test func anAccountSubscribesToOnlyOneCommittedOffer() async throws {
        try await withSimulator { sim, base, _ in
            _ = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
            let second = try await Curl.post(
                base + "/buyer/offers/offer-b/subscribe", body: "as=alice",
                contentType: "application/x-www-form-urlencoded")
            #expect(second.status == 409)
            #expect(second.body.contains("only one"))
            // Another account's offer is not even visible.
            #expect(try await Curl.get(base + "/buyer/offers/offer-c?as=alice").status == 404)
        }
    }

    @Test func boto3AgainstTheSellerAPIs() async throws {
        try await withSimulator { sim, base, _ in
            let token = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/boto3_seller.py").path
            let result = try await ExternalCommand.run(
                [
                    "python3", script, base, token, Self.product, Self.seller.accessKeyID,
                    Self.seller.secretAccessKey
                ], timeout: .seconds(60))
            #expect(result.status == 0, "\(result.stderr)")
            let output = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let resolved = output["resolve"] as? [String: String]
            #expect(resolved?["CustomerAWSAccountId"] == "111111111111")
            #expect(resolved?["ProductCode"] == Self.product)
            let entitlements = output["entitlements"] as? [[String: Any]]
            #expect(entitlements?.compactMap { $0["Dimension"] as? String } == ["compute", "seats", "storage"])
            #expect((entitlements?.first?["Value"] as? [String: Int])?["IntegerValue"] == 7)
            #expect(output["meter"] as? [String] == ["Success"])
            #expect(output["meterAgain"] as? [String] == ["Success"])
            #expect(output["meterChanged"] as? [String] == ["DuplicateRecord"])
            #expect(output["wrongSecret"] as? String == "InvalidSignatureException")
            #expect(output["unknownKey"] as? String == "UnrecognizedClientException")
            #expect(output["badToken"] as? String == "InvalidTokenException")
        }
    }

    /// The same BatchMeterUsage calls through boto3 and through our client: the same statuses, the
    /// same MeteringRecordIds (identical records are deduplicated), the same refusals.
    @Test func boto3AndOurClientGetTheSameMeteringResults() async throws {
        try await withSimulator { _, base, _ in
            let token = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
            let (metering, _) = client(base)
            let customer = try await metering.resolveCustomer(registrationToken: token)
            let account = try #require(customer.customerAWSAccountID)
            let license = try #require(customer.licenseArn)
            let hour = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600)
            let earlier = hour.addingTimeInterval(-3600)
            func record(
                _ at: Date, _ dimension: String, _ quantity: Int, account: String? = account, license: String? = license, customer: String? = nil
            )
                -> UsageRecord
            {
                UsageRecord(
                    timestamp: at, customerIdentifier: customer, customerAWSAccountID: account, licenseArn: license, dimension: dimension,
                    quantity: quantity)
            }
            let calls: [(product: String?, records: [UsageRecord])] = [
                // By account and license (no product code), by customer identifier, a stranger.
                (nil, [record(hour, "compute", 5), record(hour, "storage", 40)]),
                (Self.product, [record(hour, "seats", 2, account: nil, license: nil, customer: customer.customerIdentifier)]),
                (Self.product, [record(hour, "compute", 1, account: "999999999999", license: nil)]),
                // The same hour with another quantity: not billed.
                (nil, [record(hour, "compute", 6)]),
                // Refused whole: 6 hours old, before the subscription, a dimension the product lacks, another's license.
                (nil, [record(hour, "compute", 5), record(hour.addingTimeInterval(-6 * 3600), "compute", 1)]),
                (nil, [record(earlier, "storage", 1)]),
                (nil, [record(hour, "gpus", 1)]),
                (nil, [record(hour, "compute", 1, license: "arn:aws:license-manager::123456789012:license:l-other")]),
                (Self.product, [record(hour, "compute", 1, customer: customer.customerIdentifier)])
            ]
            func ours() async -> [String] {
                var outcomes: [String] = []
                for call in calls {
                    do {
                        let answer = try await metering.batchMeterUsage(productCode: call.product, records: call.records)
                        outcomes.append(answer.results.map { "\($0.status ?? "-") \($0.meteringRecordID ?? "-")" }.joined(separator: ", "))
                    } catch {
                        outcomes.append("error \(error.kind)")
                    }
                }
                return outcomes
            }
            let first = await ours()
            let json = calls.map { call -> [String: Any] in
                [
                    "ProductCode": call.product ?? NSNull(),
                    "UsageRecords": call.records.map { record -> [String: Any] in
                        var fields: [String: Any] = [
                            "Timestamp": record.timestamp.timeIntervalSince1970, "Dimension": record.dimension, "Quantity": record.quantity ?? 0
                        ]
                        fields["CustomerAWSAccountId"] = record.customerAWSAccountID
                        fields["LicenseArn"] = record.licenseArn
                        fields["CustomerIdentifier"] = record.customerIdentifier
                        return fields
                    }
                ]
            }
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/boto3_metering.py").path
            let result = try await ExternalCommand.run(
                [
                    "python3", script, base, Self.seller.accessKeyID, Self.seller.secretAccessKey,
                    String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
                ], timeout: .seconds(60))
            #expect(result.status == 0, "\(result.stderr)")
            let answers = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
            let boto3 = answers.map { answer -> String in
                if let error = answer["error"] as? String { return "error \(error)" }
                return ((answer["results"] as? [[Any]]) ?? []).map { "\($0[0] as? String ?? "-") \($0[1] as? String ?? "-")" }
                    .joined(separator: ", ")
            }
            let kinds = first.map {
                $0.hasPrefix("error ") ? $0 : $0.split(separator: ",").map { $0.split(separator: " ").first ?? "" }.joined(separator: ",")
            }
            #expect(
                kinds == [
                    "Success,Success", "Success", "CustomerNotSubscribed", "DuplicateRecord", "error timestampOutOfBounds",
                    "error timestampOutOfBounds", "error invalidUsageDimension", "error invalidLicense", "error invalidParameter"
                ], "\(first)")
            // boto3 names the errors as AWS does; the records it resends get the same ids.
            let awsNames = [
                "error timestampOutOfBounds": "error TimestampOutOfBoundsException",
                "error invalidUsageDimension": "error InvalidUsageDimensionException",
                "error invalidLicense": "error InvalidLicenseException", "error invalidParameter": "error InvalidParameterException"
            ]
            #expect(boto3 == first.map { awsNames[$0] ?? $0 })
        }
    }

    /// After a cancellation, usage from before it is taken for one more (shortened) hour, then
    /// the customer is not subscribed.
    @Test func usageFromBeforeACancellationIsTakenForAnHourThenRefused() async throws {
        try await withStarted(SimulatorProcess.start(meteringHourSeconds: 3)) { sim in
            let token = try await sim.subscribeAndSetUp(identity: "alice", offer: "offer-a")
            let (metering, _) = client(sim.baseURL)
            let customer = try await metering.resolveCustomer(registrationToken: token)
            let hour = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 3).rounded(.down) * 3)
            try await sim.cancel(identity: "alice", customer: customer.customerIdentifier)
            var record = UsageRecord(
                timestamp: hour, customerAWSAccountID: customer.customerAWSAccountID, licenseArn: customer.licenseArn, dimension: "compute",
                quantity: 2)
            let soon = try await metering.batchMeterUsage(productCode: nil, records: [record])
            #expect(soon.results.map(\.status) == ["Success"])
            try await Task.sleep(for: .seconds(3.5))
            record.dimension = "storage"
            let late = try await metering.batchMeterUsage(productCode: nil, records: [record])
            #expect(late.results.map(\.status) == ["CustomerNotSubscribed"])
        }
    }

    @Test func ourClientEndToEnd() async throws {
        try await withSimulator { sim, base, directory in
            let token = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
            let (metering, entitlements) = client(base)
            let customer = try await metering.resolveCustomer(registrationToken: token)
            let all = try await entitlements.entitlements(
                productCode: Self.product, filter: [.customerIdentifier: [customer.customerIdentifier]],
                pageSize: 2)
            #expect(all.map(\.dimension) == ["compute", "seats", "storage"])
            #expect(all.map(\.value) == [.integer(7), .integer(10), .integer(500)])
            let none = try await entitlements.entitlements(productCode: Self.product, filter: [.customerAWSAccountID: ["999999999999"]])
            #expect(none.isEmpty)

            let record = UsageRecord(timestamp: Date(), customerIdentifier: customer.customerIdentifier, dimension: "compute", quantity: 1)
            let stranger = UsageRecord(timestamp: Date(), customerIdentifier: "cust-nobody", dimension: "compute", quantity: 1)
            let metered = try await metering.batchMeterUsage(productCode: Self.product, records: [record, stranger])
            #expect(metered.results.map(\.status) == ["Success", "CustomerNotSubscribed"])

            // Throttling is retried, then the call succeeds.
            let throttle = try await Curl.post(base + "/_sim/throttle", body: #"{"count":2}"#)
            #expect(throttle.status == 204)
            #expect(try await metering.resolveCustomer(registrationToken: token) == customer)

            // An expired token says so.
            let database = directory + "/aws-marketplace-sim.sqlite"
            let expire = try await ExternalCommand.run(["sqlite3", database, "UPDATE registration_token SET expires_at = '2000-01-01 00:00:00.000'"])
            #expect(expire.status == 0, "\(expire.stderr)")
            do {
                _ = try await metering.resolveCustomer(registrationToken: token)
                Issue.record("an expired token resolved")
            } catch let error as AWSMarketplaceError {
                #expect(error.kind == .expiredToken)
            }
        }
    }

    // MARK: Notifications and email

    private func received(_ receiver: ChildProcess, count: Int) async throws -> [[String: Any]] {
        var messages: [[String: Any]] = []
        try await eventually(timeout: .seconds(15)) {
            let reply = try await Curl.get("http://127.0.0.1:\(receiver.port)/received")
            messages = (try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [[String: Any]]) ?? []
            return messages.count >= count
        }
        return messages
    }

    @Test func lifecycleNotificationsAreSignedConfirmedAndOrdered() async throws {
        try await withStarted(ChildProcess(pythonFixture: "sns_receiver.py", arguments: [])) { receiver in
            try await withSimulator(notificationURL: "http://127.0.0.1:\(receiver.port)/sns") { sim, base, _ in
                _ = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
                let amended = try await Curl.post(base + "/_sim/offers/offer-a/amend", body: #"{"dimensions":{"seats":20,"compute":7}}"#)
                #expect(amended.status == 204)
                let subscription = try #require(try await received(receiver, count: 3).last?["customer-identifier"] as? String)
                let cancelled = try await Curl.post(
                    base + "/buyer/subscriptions/\(subscription)/cancel", body: "as=alice",
                    contentType: "application/x-www-form-urlencoded")
                #expect(cancelled.status == 200)

                let messages = try await received(receiver, count: 5)
                #expect(
                    messages.map { $0["Type"] as? String } == [
                        "SubscriptionConfirmation", "Notification", "Notification", "Notification", "Notification"
                    ])
                #expect(messages.first?["confirmed"] as? Bool == true)
                #expect(
                    messages.dropFirst().map { $0["action"] as? String } == [
                        "subscribe-success", "entitlement-updated", "unsubscribe-pending", "unsubscribe-success"
                    ])
                for message in messages {
                    #expect(message["verified"] as? Bool == true, "\(message)")
                    #expect(message["tamperedVerified"] as? Bool == false)
                    #expect(message["header"] as? String == message["Type"] as? String)
                }
                #expect(
                    messages.dropFirst().allSatisfy {
                        $0["product-code"] as? String == Self.product && $0["offer-identifier"] as? String == "offer-a"
                    })
                // The amendment shows in the entitlements; the cancellation removes them.
                let (_, entitlements) = client(base)
                #expect(try await entitlements.entitlements(productCode: Self.product, filter: [.customerIdentifier: [subscription]]).isEmpty)
            }
        }
    }

    @Test func failedPaymentEndsTheSubscriptionWithSubscribeFail() async throws {
        try await withStarted(ChildProcess(pythonFixture: "sns_receiver.py", arguments: [])) { receiver in
            try await withSimulator(notificationURL: "http://127.0.0.1:\(receiver.port)/sns") { sim, base, _ in
                let token = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
                let (metering, entitlements) = client(base)
                let customer = try await metering.resolveCustomer(registrationToken: token).customerIdentifier
                #expect(try await Curl.post(base + "/_sim/subscriptions/\(customer)/fail", body: "").status == 204)
                #expect(try await Curl.post(base + "/_sim/subscriptions/cust-nobody/fail", body: "").status == 404)
                let messages = try await received(receiver, count: 3)
                #expect(messages.dropFirst().map { $0["action"] as? String } == ["subscribe-success", "subscribe-fail"])
                #expect(messages.allSatisfy { $0["verified"] as? Bool == true })
                #expect(try await entitlements.entitlements(productCode: Self.product, filter: [.customerIdentifier: [customer]]).isEmpty)
            }
        }
    }

    @Test func notificationsAreRetriedUntilAccepted() async throws {
        try await withStarted(ChildProcess(pythonFixture: "sns_receiver.py", arguments: ["--fail-first", "3"])) { receiver in
            try await withSimulator(notificationURL: "http://127.0.0.1:\(receiver.port)/sns") { sim, base, _ in
                _ = try await subscribeAndSetUp(base, identity: "alice", offer: "offer-a")
                let messages = try await received(receiver, count: 2)
                #expect(messages.map { $0["Type"] as? String } == ["SubscriptionConfirmation", "Notification"])
                #expect(Set(messages.compactMap { $0["MessageId"] as? String }).count == 2)
            }
        }
    }

    @Test func sigtermStopsTheSimulatorCleanlyEvenWhileNotificationsAreRetried() async throws {
        // Nothing listens at the notification URL, so the notifier is in the middle of retrying.
        try await withSimulator(notificationURL: "http://127.0.0.1:\(try await freePort())/sns") { sim, _, _ in
            try await eventually { sim.output.contains("notification refused") || sim.output.contains("retrying") }
            sim.signal(SIGTERM)
            #expect(await sim.waitForExit(timeout: .seconds(10)) == 0, "\(sim.output)")
            #expect(!sim.output.contains("Error:"), "\(sim.output)")
        }
    }

    @Test func offerEmailCarriesTheReviewLink() async throws {
        let maildrop = NSTemporaryDirectory() + "maildrop-\(UUID().uuidString)"
        try await withSimulator(maildrop: maildrop) { sim, base, _ in
            var email = ""
            try await eventually {
                email = (try? String(contentsOfFile: maildrop + "/offer-offer-a.eml", encoding: .utf8)) ?? ""
                return !email.isEmpty
            }
            #expect(email.contains("To: <buyer@example.com>"))
            #expect(email.contains("Subject: Private offer: ClickHouse Cloud - Committed Contract"))
            let link = try #require(email.split(separator: "\r\n").first { $0.hasPrefix("Review offer: ") }).dropFirst("Review offer: ".count)
            #expect(link == "\(base)/buyer/offers/offer-a")
            #expect(try await Curl.get(link + "?as=alice").status == 200)
            #expect(FileManager.default.fileExists(atPath: maildrop + "/offer-offer-c.eml"))
        }
    }
}
