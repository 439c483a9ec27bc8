import AWSMarketplace
import ConnectTransport
import Contracts
import Foundation
import IdentityTestSupport
import RPCCore
import TestSupport
import Testing

/// Usage metering through the real services and the simulator's BatchMeterUsage, with metering
/// hours of a few seconds: events recorded through many concurrent calls and retries, faults on
/// the way to AWS, and afterwards the simulator holds each (customer, dimension, hour) once with
/// the events' totals.
@Suite(.timeLimit(.minutes(3))) struct MeteringTests {
    /// A batch of events for `organization`, their keys `prefix0`, `prefix1`...
    static func events(_ prefix: String, organization: String, count: Int, at: Date = Date()) -> [UsageEvent] {
        (0..<count).map { index in
            UsageEvent(
                idempotencyKey: "\(prefix)\(index)", organizationId: organization, dimension: index % 2 == 0 ? "compute" : "storage",
                quantity: Int32(index % 7 + 1), occurredAt: at)
        }
    }

    /// Each dimension's total quantity.
    static func totals(_ events: [UsageEvent]) -> [String: Int] {
        events.reduce(into: [:]) { $0[$1.dimension, default: 0] += Int($1.quantity) }
    }

    static func totals(_ records: [(customer: String, dimension: String, hour: Int, quantity: Int, id: String)]) -> [String: Int] {
        records.reduce(into: [:]) { $0[$1.dimension, default: 0] += $1.quantity }
    }

    /// Waits until every usage hour in marketplace-link's database is in `state` (and there is one).
    static func allHours(_ store: TestDatabase, _ state: String, timeout: Duration = .seconds(40)) async throws -> Bool {
        try await eventually(timeout: timeout) {
            let hours = try await store.count("SELECT count(*) FROM usage_hour")
            let others = try await store.count("SELECT count(*) FROM usage_hour WHERE state != '\(state)'")
            return hours > 0 && others == 0
        }
    }

    static func code(_ call: () async throws -> some Any) async -> ConnectCode? {
        do {
            _ = try await call()
            return nil
        } catch let error as RPCError {
            return error.code
        } catch {
            return .unknown
        }
    }

    @Test(arguments: StorageBackend.allCases) func concurrentEventsAndRetriesAreBilledOncePerCustomerDimensionAndHour(backend: StorageBackend)
        async throws
    {
        // Hours of 12 s, each wave sent as an hour starts: under load a wave may take seconds, and
        // an event first recorded after its hour closed would be refused (as it should).
        let hour = 12
        try await withStarted(JourneyHarness.start(backend: backend, meteringHour: hour)) { system in
            let (user, organization) = try await system.linkedOrganization()
            let reporter = system.operatorClient
            func record(_ events: [UsageEvent]) async throws -> RecordUsageResponse {
                try await reporter.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: events))
            }

            // Refusals change nothing: a dimension not metered, one not in the contract, an
            // organization without a link, too many events, no service credential.
            let (_, unlinked) = try await system.adminWithOrganization("Not linked")
            let good = Self.events("refused-", organization: organization.id, count: 1)
            #expect(
                await Self.code {
                    try await record(
                        good + [UsageEvent(idempotencyKey: "x", organizationId: organization.id, dimension: "gpus", quantity: 1, occurredAt: Date())])
                } == .invalidArgument)
            #expect(
                await Self.code {
                    try await record(
                        good + [UsageEvent(idempotencyKey: "x", organizationId: organization.id, dimension: "seats", quantity: 1, occurredAt: Date())]
                    )
                } == .invalidArgument)
            #expect(await Self.code { try await record(good + Self.events("other-", organization: unlinked.id, count: 1)) } == .failedPrecondition)
            #expect(await Self.code { try await record(Self.events("many-", organization: organization.id, count: 1001)) } == .invalidArgument)
            #expect(
                await Self.code {
                    try await record([
                        UsageEvent(
                            idempotencyKey: "late", organizationId: organization.id, dimension: "compute", quantity: 1,
                            occurredAt: Date().addingTimeInterval(-30))
                    ])
                } == .invalidArgument)
            #expect(
                await Self.code { try await system.linkClient.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: good)) }
                    == .unauthenticated)
            #expect(try await system.linkStore.count("SELECT count(*) FROM usage_event") == 0)

            // 20 batches of 20 events, each batch sent twice at once (a retry racing the first try).
            try await waitForPeriodStart(seconds: hour)
            let first = (0..<20).map { Self.events("a\($0)-", organization: organization.id, count: 20) }
            let answers = try await withThrowingTaskGroup(of: RecordUsageResponse.self) { group in
                for batch in first + first { group.addTask { try await record(batch) } }
                return try await group.reduce(into: [RecordUsageResponse]()) { $0.append($1) }
            }
            #expect(answers.map(\.accepted).reduce(0, +) == 400 && answers.map(\.duplicates).reduce(0, +) == 400)
            // The same key for another event is refused, and nothing of its batch is kept.
            var reused = first[0][0]
            reused.quantity += 1
            #expect(await Self.code { try await record(Self.events("fresh-", organization: organization.id, count: 3) + [reused]) } == .alreadyExists)
            #expect(try await system.linkStore.count("SELECT count(*) FROM usage_event") == 400)

            // A later hour, then an event for the first hour once it is closed.
            try await waitForPeriodStart(seconds: hour)
            let second = Self.events("b-", organization: organization.id, count: 50)
            #expect(try await record(second).accepted == 50)
            let closed = try await eventually(timeout: .seconds(30)) {
                try await system.linkStore.count("SELECT count(*) FROM usage_hour WHERE state = 'SENT'") >= 2
            }
            #expect(closed)
            do {
                _ = try await record([
                    UsageEvent(
                        idempotencyKey: "c-0", organizationId: organization.id, dimension: "compute", quantity: 1,
                        occurredAt: first[0][0].occurredAt)
                ])
                Issue.record("an event for a closed hour was accepted")
            } catch let error as RPCError {
                // Tools/load/driver.py tells this refusal from the others by these words.
                #expect(error.code == .failedPrecondition && error.message.contains("already sent to AWS Marketplace"), "\(error)")
            }

            #expect(try await Self.allHours(system.linkStore, "SENT"))
            let expected = Self.totals(first.flatMap { $0 } + second)
            let records = try await system.simulator.meteringRecords()
            #expect(Self.totals(records) == expected)
            #expect(Set(records.map { "\($0.customer) \($0.dimension) \($0.hour)" }).count == records.count)
            #expect(try await system.linkStore.count("SELECT count(*) FROM usage_hour") == records.count)
            // Sent as AWS asks of new integrations: by AWS account and license.
            let named = try await Curl.get(system.simulator.baseURL + "/_sim/metering-records")
            #expect(named.body.contains("\"awsAccountId\":\"111111111111\"") && named.body.contains("\"licenseArn\":\"arn:aws:license-manager"))

            // The billing page's report: this month per dimension, every hour SENT.
            let report = try await system.linkClient.call(
                MarketplaceLink.getUsage, GetUsageRequest(organizationId: organization.id), options: .init(bearerToken: user.accessToken))
            #expect(Dictionary(uniqueKeysWithValues: report.dimensions.map { ($0.dimension, Int($0.quantity)) }) == expected)
            #expect(report.dimensions.allSatisfy { $0.quantity == $0.sentQuantity })
            #expect(report.hours.count == records.count && report.hours.allSatisfy { $0.state == .sent && $0.meteringRecordId != nil })
            // A member without the BILLING role may not see it.
            let stranger = try await system.identity.signedUpUser()
            #expect(
                await Self.code {
                    try await system.linkClient.call(
                        MarketplaceLink.getUsage, GetUsageRequest(organizationId: organization.id), options: .init(bearerToken: stranger.accessToken))
                } == .notFound)
        }
    }

    /// Throttling, records handed back unprocessed, and AWS unreachable for a while: each hour
    /// still arrives once.
    @Test(arguments: StorageBackend.allCases) func throttlingUnprocessedRecordsAndAnUnreachableAWSLoseNothing(backend: StorageBackend)
        async throws
    {
        try await withStarted(JourneyHarness.start(backend: backend, meteringHour: 4)) { system in
            let (_, organization) = try await system.linkedOrganization()
            let reporter = system.operatorClient
            try await system.simulator.throttle(next: 8)
            try await system.simulator.leaveUnprocessed(next: 1)
            let first = Self.events("t-", organization: organization.id, count: 40)
            _ = try await reporter.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: first))
            #expect(try await Self.allHours(system.linkStore, "SENT"))
            #expect(try await system.linkStore.count("SELECT count(*) FROM usage_hour WHERE attempts > 1") > 0, "some hour was retried")

            // AWS down for 8 seconds while usage keeps coming.
            let restarted = try await system.restartSimulator(after: .zero, meteringHour: 4)
            await restarted.stop()
            let second = Self.events("u-", organization: organization.id, count: 40)
            _ = try await reporter.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: second))
            try await Task.sleep(for: .seconds(8))
            #expect(try await system.linkStore.count("SELECT count(*) FROM usage_hour WHERE state = 'FROZEN'") > 0, "waiting for AWS")
            try await withStarted(system.restartSimulator(after: .zero, meteringHour: 4)) { simulator in
                #expect(try await Self.allHours(system.linkStore, "SENT"))
                let records = try await simulator.meteringRecords()
                #expect(Self.totals(records) == Self.totals(first + second))
                #expect(Set(records.map { "\($0.dimension) \($0.hour)" }).count == records.count)
            }
        }
    }

    /// marketplace-link as a real process, killed with SIGKILL after freezing an hour and before
    /// AWS took it, then in the middle of a send AWS recorded but had not answered.
    @Test func killNineBeforeAndDuringASendBillsEachHourOnce() async throws {
        try await withStarted(JourneyHarness.start(meteringHour: 4)) { system in
            try await withStarted(TestDatabase.start(.sqlite, service: "marketplace-link")) { linkStore in
                let (user, organization) = try await system.adminWithOrganization()
                let arguments =
                    ["--port", "0"] + linkStore.serviceArguments + [
                        "--identity-url", "http://127.0.0.1:\(system.identity.port)",
                        "--organization-url", system.organizationURL, "--aws-marketplace-endpoint", system.simulator.baseURL,
                        "--service-secret", JourneyHarness.linkSecret, "--product-code", SimulatorProcess.product,
                        "--trusted-services", "operator=\(TrustedServices.digest(ofSecret: JourneyHarness.operatorSecret))",
                        "--metered-dimensions", "compute,storage", "--metering-hour-seconds", "4"
                    ]
                let environment = ["AWS_ACCESS_KEY_ID": SimulatorProcess.sellerAccessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.sellerSecret]
                func reporter(_ process: ChildProcess) throws -> ConnectClient {
                    try ConnectClient(
                        configuration: .init(
                            baseURL: "http://127.0.0.1:\(process.port)",
                            credential: ServiceCredential(serviceName: "operator", secret: JourneyHarness.operatorSecret)))
                }

                let first = try await ChildProcess(service: "marketplace-link", arguments: arguments, environment: environment)
                let client = try reporter(first)
                let token = try await system.simulator.subscribeAndSetUp(identity: "alice", offer: "offer-a")
                let claim = try #require(
                    try await client.call(MarketplaceLink.acceptRegistration, AcceptRegistrationRequest(registrationToken: token)).claim)
                let bound = try await client.call(
                    MarketplaceLink.bindOrganization, BindOrganizationRequest(claim: claim, organizationId: organization.id),
                    options: .init(bearerToken: user.accessToken))
                #expect(bound.state == .active)

                // Frozen, not sent (AWS throttles everything): killed.
                try await system.simulator.throttle(next: 100_000)
                let before = Self.events("k1-", organization: organization.id, count: 30)
                _ = try await client.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: before))
                let frozen = try await eventually(timeout: .seconds(20)) {
                    try await linkStore.count("SELECT count(*) FROM usage_hour WHERE state = 'FROZEN' AND attempts > 0") > 0
                }
                #expect(frozen, "\(first.output)")
                first.signal(SIGKILL)
                _ = await first.waitForExit(timeout: .seconds(5))
                await client.close()
                try await system.simulator.throttle(next: 0)

                // Sent again after the restart; then AWS keeps the next call's records but answers
                // late, and the process dies waiting.
                try await withStarted(ChildProcess(service: "marketplace-link", arguments: arguments, environment: environment)) { second in
                    #expect(try await Self.allHours(linkStore, "SENT"), "\(second.output)")
                    let sentBefore = try await system.simulator.meteringRecords().count
                    try await system.simulator.delayMetering(next: 1, seconds: 20)
                    let secondClient = try reporter(second)
                    let during = Self.events("k2-", organization: organization.id, count: 30)
                    _ = try await secondClient.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: during))
                    await secondClient.close()
                    let taken = try await eventually(timeout: .seconds(20)) { try await system.simulator.meteringRecords().count > sentBefore }
                    #expect(taken)
                    second.signal(SIGKILL)
                    _ = await second.waitForExit(timeout: .seconds(5))
                    #expect(try await linkStore.count("SELECT count(*) FROM usage_hour WHERE state = 'FROZEN'") > 0)

                    try await withStarted(ChildProcess(service: "marketplace-link", arguments: arguments, environment: environment)) { third in
                        #expect(try await Self.allHours(linkStore, "SENT"), "\(third.output)")
                        let records = try await system.simulator.meteringRecords()
                        #expect(Self.totals(records) == Self.totals(before + during))
                        #expect(Set(records.map { "\($0.dimension) \($0.hour)" }).count == records.count)
                        // Each hour's id is the one AWS gave the first time it took the record.
                        let ids = try await linkStore.query("SELECT metering_record_id FROM usage_hour ORDER BY metering_record_id")
                        #expect(ids.split(separator: "\n").sorted() == records.map { Substring($0.id) }.sorted())
                    }
                }
            }
        }
    }

    /// An hour AWS could not take within its 6 hours is kept as EXPIRED, counted and never sent.
    @Test func anHourNotSentWithinTheWindowIsKeptAndReportedNotResent() async throws {
        try await withStarted(JourneyHarness.start(meteringHour: 2)) { system in
            let (user, organization) = try await system.linkedOrganization()
            try await system.simulator.throttle(next: 100_000)
            let events = Self.events("w-", organization: organization.id, count: 4)
            _ = try await system.operatorClient.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: events))
            #expect(try await Self.allHours(system.linkStore, "EXPIRED", timeout: .seconds(30)))
            try await system.simulator.throttle(next: 0)
            try await Task.sleep(for: .seconds(3))
            #expect(try await system.simulator.meteringRecords().isEmpty)
            let report = try await system.linkClient.call(
                MarketplaceLink.getUsage, GetUsageRequest(organizationId: organization.id), options: .init(bearerToken: user.accessToken))
            #expect(report.hours.allSatisfy { $0.state == .expired } && report.dimensions.allSatisfy { $0.sentQuantity == 0 && $0.quantity > 0 })
            let metrics = try await Curl.get(system.linkURL + "/metrics")
            #expect(metrics.body.contains(#"metering_usage_hours_total{outcome="expired"} 2"#), "\(metrics.body)")
        }
    }

    /// After the buyer cancels, the usage recorded so far is sent at once (AWS takes it for an
    /// hour after unsubscribe-pending) and new usage is refused.
    @Test func afterCancellationRemainingUsageIsSentAndNewUsageRefused() async throws {
        try await withStarted(JourneyHarness.start(notifications: true, meteringHour: 20)) { system in
            let (_, organization) = try await system.linkedOrganization()
            let events = Self.events("c-", organization: organization.id, count: 10)
            _ = try await system.operatorClient.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: events))
            let customer = try await system.linkStore.query("SELECT customer_identifier FROM registration")
            try await system.simulator.cancel(identity: "alice", customer: customer)
            let cancelled = try await eventually(timeout: .seconds(20)) { try await system.linkStore.query("SELECT state FROM link") == "CANCELLED" }
            #expect(cancelled)
            // Sent long before the 20-second hour ends.
            #expect(try await Self.allHours(system.linkStore, "SENT", timeout: .seconds(8)))
            #expect(Self.totals(try await system.simulator.meteringRecords()) == Self.totals(events))
            #expect(
                await Self.code {
                    try await system.operatorClient.call(
                        MarketplaceLink.recordUsage, RecordUsageRequest(events: Self.events("after-", organization: organization.id, count: 1)))
                } == .failedPrecondition)
        }
    }

    /// AWS already holds another quantity for the hour (sent by someone else, say a bug of ours)
    /// when the hour is sent: DuplicateRecord is kept, counted, shown, and the hour never resent.
    @Test func aDuplicateRecordIsKeptCountedAndNeverResent() async throws {
        let hour = 6
        try await withStarted(JourneyHarness.start(meteringHour: hour)) { system in
            let (user, organization) = try await system.linkedOrganization()
            try await waitForPeriodStart(seconds: hour)
            let events = (0..<3).map {
                UsageEvent(idempotencyKey: "d\($0)", organizationId: organization.id, dimension: "compute", quantity: 2, occurredAt: Date())
            }
            _ = try await system.operatorClient.call(MarketplaceLink.recordUsage, RecordUsageRequest(events: events))
            let row = try await system.linkStore.query("SELECT aws_account_id || ' ' || license_arn || ' ' || hour_start FROM usage_hour")
                .split(separator: " ").map(String.init)
            try #require(row.count == 3)
            // Another sender gets in first, while the hour is still open, with another quantity
            // for the same customer, dimension and hour.
            let metering = MarketplaceMeteringClient(
                transport: AWSJSONClient(
                    configuration: .init(
                        endpoint: URL(string: system.simulator.baseURL + "/")!, region: "us-east-1",
                        credentials: AWSCredentials(accessKeyID: SimulatorProcess.sellerAccessKeyID, secretAccessKey: SimulatorProcess.sellerSecret)))
            )
            let other = UsageRecord(
                timestamp: Date(timeIntervalSince1970: try #require(Double(row[2]))), customerAWSAccountID: row[0], licenseArn: row[1],
                dimension: "compute", quantity: 99)
            let taken = try await metering.batchMeterUsage(productCode: nil, records: [other])
            #expect(taken.results.map(\.status) == ["Success"])
            #expect(try await system.linkStore.query("SELECT state FROM usage_hour") == "OPEN", "the other sender was first")

            #expect(try await Self.allHours(system.linkStore, "DUPLICATE", timeout: .seconds(30)))
            try await Task.sleep(for: .seconds(3))
            #expect(try await system.simulator.meteringRecords().map(\.quantity) == [99], "our quantity was never billed nor resent")
            let metrics = try await Curl.get(system.linkURL + "/metrics")
            #expect(metrics.body.contains(#"metering_usage_hours_total{outcome="duplicate"} 1"#))
            let report = try await system.linkClient.call(
                MarketplaceLink.getUsage, GetUsageRequest(organizationId: organization.id), options: .init(bearerToken: user.accessToken))
            #expect(report.hours.map(\.state) == [.duplicate] && report.hours.first?.detail?.contains("DuplicateRecord") == true)
        }
    }

    /// AWS says the customer is not subscribed (here: cancelled in AWS without our hearing of it):
    /// the hour is kept as NOT_SUBSCRIBED and the link's metering stops.
    @Test func customerNotSubscribedStopsTheLinksMetering() async throws {
        try await withStarted(JourneyHarness.start(meteringHour: 5)) { system in
            let (_, organization) = try await system.linkedOrganization()
            let customer = try await system.linkStore.query("SELECT customer_identifier FROM registration")
            try await system.simulator.cancel(identity: "alice", customer: customer)
            // AWS takes usage from before a cancellation for an hour; this usage comes after it.
            try await Task.sleep(for: .seconds(5.5))
            _ = try await system.operatorClient.call(
                MarketplaceLink.recordUsage, RecordUsageRequest(events: Self.events("n-", organization: organization.id, count: 2)))
            #expect(try await Self.allHours(system.linkStore, "NOT_SUBSCRIBED", timeout: .seconds(20)))
            #expect(try await system.linkStore.count("SELECT count(*) FROM link WHERE metering_stopped IS NOT NULL") == 1)
            #expect(
                await Self.code {
                    try await system.operatorClient.call(
                        MarketplaceLink.recordUsage, RecordUsageRequest(events: Self.events("after-", organization: organization.id, count: 1)))
                } == .failedPrecondition)
            #expect(try await system.simulator.meteringRecords().isEmpty)
        }
    }
}
