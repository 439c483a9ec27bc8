import AWSMarketplace
import Contracts
import Foundation
import RPCCore
import Testing

@testable import MarketplaceLinkService

/// RecordUsage's and the meter's rules, without a database or a socket.
struct UsageRulesTests {
    static let settings = MeteringSettings(dimensions: ["compute", "storage"], hourSeconds: 3600)
    static let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z

    static func event(_ key: String = "k1", dimension: String = "compute", quantity: Int32 = 3, at: Date = now) -> UsageEvent {
        UsageEvent(idempotencyKey: key, organizationId: "org-1", dimension: dimension, quantity: quantity, occurredAt: at)
    }

    static func refusal(_ events: [UsageEvent], settings: MeteringSettings = settings) -> RPCError? {
        do {
            _ = try UsageRules.check(RecordUsageRequest(events: events), settings: settings, now: now)
            return nil
        } catch {
            return error.rpcError
        }
    }

    @Test func eventsAreCheckedBeforeAnyStorage() throws {
        let checked = try UsageRules.check(
            RecordUsageRequest(events: [Self.event(at: Self.now.addingTimeInterval(-1))]), settings: Self.settings, now: Self.now)
        #expect(checked.map(\.hourStart) == [1_800_000_000 - 3600])
        #expect(Self.refusal([])?.code == .invalidArgument)
        #expect(Self.refusal(Array(repeating: Self.event(), count: 1001))?.code == .invalidArgument)
        #expect(Self.refusal([Self.event(dimension: "seats")])?.message.contains("metered: compute, storage") == true)
        #expect(Self.refusal([Self.event(quantity: 0)])?.code == .invalidArgument)
        #expect(Self.refusal([Self.event("has space")])?.code == .invalidArgument)
        #expect(Self.refusal([Self.event(String(repeating: "k", count: 129))])?.code == .invalidArgument)
        #expect(Self.refusal([Self.event(at: Self.now.addingTimeInterval(301))])?.message.contains("future") == true)
        // An hour that could no longer reach AWS once closed (5 hours back and more) is refused.
        #expect(Self.refusal([Self.event(at: Self.now.addingTimeInterval(-4 * 3600))]) == nil)
        #expect(Self.refusal([Self.event(at: Self.now.addingTimeInterval(-5 * 3600))])?.code == .invalidArgument)
        #expect(Self.refusal([Self.event()], settings: MeteringSettings(dimensions: []))?.code == .failedPrecondition)
    }

    @Test func onlyAnActiveLinkWithTheDimensionTakesUsage() throws {
        let offer = OfferRecord(
            productCode: "p", awsAccountID: "111111111111", licenseArn: "arn:l", entitlements: ["compute": "7"], contractEndsAt: nil)
        let event = try UsageRules.check(RecordUsageRequest(events: [Self.event()]), settings: Self.settings, now: Self.now)[0]
        func accepts(_ link: MeteredLink?, _ event: UsageEventRecord = event) -> Bool {
            (try? UsageRules.accept(event, link: link, settings: Self.settings)) != nil
        }
        let active = MeteredLink(
            id: "l", state: .active, offer: offer, customerIdentifier: "c", linkedAt: Self.now.addingTimeInterval(-60), meteringStopped: nil)
        #expect(accepts(active))
        #expect(!accepts(nil))
        for state in [LinkState.binding, .unsubscribePending, .cancelled, .failed] {
            var link = active
            link.state = state
            #expect(!accepts(link), "\(state)")
        }
        var stopped = active
        stopped.meteringStopped = MeteringOutcome.notSubscribedReason
        #expect(!accepts(stopped))
        var storage = event
        storage.dimension = "storage"
        #expect(!accepts(active, storage), "the contract has no storage entitlement")
        var linkedLater = active
        linkedLater.linkedAt = Self.now.addingTimeInterval(3600)
        #expect(!accepts(linkedLater), "usage from before the link's hour")
        linkedLater.linkedAt = Self.now.addingTimeInterval(10)
        #expect(accepts(linkedLater), "the hour the link was made counts whole, as AWS counts the subscription's")
    }

    @Test func aRetryIsTheSameKeyWithTheSameContent() {
        let stored = UsageEventRecord(
            organizationID: "o", idempotencyKey: "k", dimension: "compute", quantity: 3, occurredAt: Self.now, hourStart: 0)
        var again = stored
        again.occurredAt = Self.now.addingTimeInterval(0.0001)
        #expect(again.isRetry(of: stored))
        again.quantity = 4
        #expect(!again.isRetry(of: stored))
    }

    @Test func theRecordNamesTheCustomerByAccountAndLicenseAndAnswersMapBack() throws {
        var hour = UsageHourRecord(
            linkID: "l", organizationID: "o", dimension: "compute", hourStart: 1_800_000_000, quantity: 9, productCode: "p",
            customerIdentifier: "cust", awsAccountID: "111111111111", licenseArn: "arn:l", state: .frozen, attempts: 0,
            meteringRecordID: nil, detail: nil)
        #expect(hour.usageRecord.customerAWSAccountID == "111111111111" && hour.usageRecord.licenseArn == "arn:l")
        #expect(hour.usageRecord.customerIdentifier == nil && hour.usageRecord.timestamp == Self.now)
        var other = hour
        other.dimension = "storage"
        hour.attempts = 3
        #expect(hour.usageRecord.quantity == 9, "a retry sends the same record")

        let json = """
            {"Results": [{"UsageRecord": {"Timestamp": 1800000000, "CustomerAWSAccountId": "111111111111", "LicenseArn": "arn:l",
                          "Dimension": "compute", "Quantity": 9}, "MeteringRecordId": "mr-1", "Status": "Success"}],
             "UnprocessedRecords": [{"Timestamp": 1800000000, "CustomerAWSAccountId": "111111111111", "LicenseArn": "arn:l",
                                     "Dimension": "storage", "Quantity": 9}]}
            """
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        let result = try decoder.decode(BatchMeterUsageResult.self, from: Data(json.utf8))
        let retryAt = Self.now.addingTimeInterval(5)
        #expect(
            UsageRules.outcomes(of: [hour, other], result: result, retryAt: retryAt) == [
                .sent(meteringRecordID: "mr-1"), .retry(at: retryAt, error: "AWS Marketplace did not process the record")
            ])
    }

    @Test func onlyWhatARecordSaysRefusesItOtherFailuresAreRetried() {
        for kind in [AWSMarketplaceError.Kind.timestampOutOfBounds, .invalidUsageDimension, .invalidLicense, .invalidParameter] {
            #expect(UsageRules.refusesRecords(AWSMarketplaceError(kind: kind, message: "")), "\(kind)")
        }
        // Bad credentials, throttling, AWS down: the records wait, not refused.
        for kind in [AWSMarketplaceError.Kind.invalidSignature, .unrecognizedClient, .accessDenied, .throttling, .unreachable, .other("New")] {
            #expect(!UsageRules.refusesRecords(AWSMarketplaceError(kind: kind, message: "")), "\(kind)")
        }
    }

    @Test func anHourClosesAfterItsGraceAndExpiresBeforeTheWindowEnds() {
        #expect(UsageRules.freezeAt(hourStart: 0, settings: Self.settings) == 3600 + 300)
        let hour = UsageHourRecord(
            linkID: "l", organizationID: "o", dimension: "compute", hourStart: 1_800_000_000, quantity: 1, productCode: "p",
            customerIdentifier: "c", awsAccountID: "a", licenseArn: nil, state: .frozen, attempts: 0, meteringRecordID: nil, detail: nil)
        #expect(!UsageRules.isPastWindow(hour, settings: Self.settings, now: Self.now.addingTimeInterval(6 * 3600 - 61)))
        #expect(UsageRules.isPastWindow(hour, settings: Self.settings, now: Self.now.addingTimeInterval(6 * 3600 - 60)))
        #expect(hour.usageRecord.customerIdentifier == "c", "without a license the customer identifier names the customer")
    }
}
