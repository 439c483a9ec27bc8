import AWSMarketplace
import Contracts
import Foundation

/// What is metered and how often: the product's metered dimensions and the length of a metering
/// hour (3600 s; shorter only for tests, with the same rules).
struct MeteringSettings: Sendable {
    var dimensions: Set<String>
    var hourSeconds: Int = 3600

    /// An hour is closed this long after it ends, so events reported a little late still count.
    var grace: Int { max(1, hourSeconds / 12) }
    /// AWS Marketplace refuses records this old (6 hours).
    var window: Int { 6 * hourSeconds }
    /// An hour is not sent this close to the end of the window (the call may take a while).
    var sendMargin: Int { max(1, hourSeconds / 60) }

    func hourStart(of date: Date) -> Int {
        Int((date.timeIntervalSince1970 / Double(hourSeconds)).rounded(.down)) * hourSeconds
    }
}

/// One usage event as checked and stored.
struct UsageEventRecord: Sendable, Equatable {
    var organizationID: String
    var idempotencyKey: String
    var dimension: String
    var quantity: Int
    var occurredAt: Date
    var hourStart: Int

    /// The same event sent again: the same key with the same content.
    func isRetry(of stored: UsageEventRecord) -> Bool {
        dimension == stored.dimension && quantity == stored.quantity && abs(occurredAt.timeIntervalSince(stored.occurredAt)) < 0.001
    }
}

/// The link usage is metered against, as RecordUsage reads it inside its transaction.
struct MeteredLink: Sendable {
    var id: String
    var state: LinkState
    var offer: OfferRecord
    var customerIdentifier: String
    var linkedAt: Date
    /// Set when AWS Marketplace said the customer is not subscribed: metering stopped.
    var meteringStopped: String?
}

/// One (link, dimension, hour) aggregate: open while events arrive, then frozen and sent as
/// exactly this record, as often as it takes.
struct UsageHourRecord: Sendable, Equatable {
    var linkID: String
    var organizationID: String
    var dimension: String
    var hourStart: Int
    var quantity: Int
    var productCode: String
    var customerIdentifier: String
    var awsAccountID: String
    var licenseArn: String?
    var state: MeteringState
    var attempts: Int
    var meteringRecordID: String?
    var detail: String?
    /// The trace of the call whose event opened the hour.
    var traceParent: String?

    /// The record AWS receives, the same every time: the customer by AWS account id and license
    /// ARN as AWS asks of new integrations, by customer identifier only when there is no license.
    var usageRecord: UsageRecord {
        if let licenseArn {
            UsageRecord(
                timestamp: Date(timeIntervalSince1970: Double(hourStart)), customerAWSAccountID: awsAccountID, licenseArn: licenseArn,
                dimension: dimension, quantity: quantity)
        } else {
            UsageRecord(
                timestamp: Date(timeIntervalSince1970: Double(hourStart)), customerIdentifier: customerIdentifier, dimension: dimension,
                quantity: quantity)
        }
    }
}

/// What became of a frozen hour sent (or not) to AWS.
enum MeteringOutcome: Sendable, Equatable {
    case sent(meteringRecordID: String)
    case notSubscribed
    case duplicate
    case refused(String)
    case expired
    case retry(at: Date, error: String)

    /// The state the hour is left in.
    var state: MeteringState {
        switch self {
        case .sent: .sent
        case .notSubscribed: .notSubscribed
        case .duplicate: .duplicate
        case .refused: .refused
        case .expired: .expired
        case .retry: .frozen
        }
    }

    static let notSubscribedReason = "is not subscribed in AWS Marketplace (CustomerNotSubscribed); metering stopped"

    /// What is stored beside the state: the record id AWS gave, and when to try again.
    var stored: (meteringRecordID: String?, nextAttemptAt: Date?) {
        switch self {
        case .sent(let id): (id, nil)
        case .retry(let at, _): (nil, at)
        default: (nil, nil)
        }
    }

    /// Why the hour is in its state, for the billing page and operators.
    var detail: String? {
        switch self {
        case .sent: nil
        case .notSubscribed: "AWS Marketplace: CustomerNotSubscribed; not billed"
        case .duplicate: "AWS Marketplace: DuplicateRecord, another quantity was sent for this hour; not billed"
        case .refused(let reason): "AWS Marketplace refused the record: \(reason)"
        case .expired: "not sent within AWS Marketplace's 6 hours; not billed"
        case .retry(_, let error): "retrying: \(error)"
        }
    }

    /// The Prometheus label of the outcome.
    var label: String {
        switch self {
        case .sent: "sent"
        case .notSubscribed: "not_subscribed"
        case .duplicate: "duplicate"
        case .refused: "refused"
        case .expired: "expired"
        case .retry: "retry"
        }
    }
}

/// What RecordUsage's transaction asks of each event, in the order storage meets it: whether it
/// is a retry (its key already stored), which link takes it, when its hour closes, and whether
/// its hour took it. Both storage backends apply these; the rules are `UsageRules`'.
struct UsageAdmission: Sendable {
    let settings: MeteringSettings

    /// True for an event sent again (same key, same content): it counts once. The same key with
    /// other content is refused.
    func isRetry(_ event: UsageEventRecord, stored: UsageEventRecord?) throws(MarketplaceLinkError) -> Bool {
        guard let stored else { return false }
        guard event.isRetry(of: stored) else { throw .usageKeyReused(event.idempotencyKey) }
        return true
    }

    /// The organization's link, if it takes the event (`UsageRules.accept`).
    func link(for event: UsageEventRecord, _ link: MeteredLink?) throws(MarketplaceLinkError) -> MeteredLink {
        try UsageRules.accept(event, link: link, settings: settings)
    }

    func freezeAt(_ event: UsageEventRecord) -> Int {
        UsageRules.freezeAt(hourStart: event.hourStart, settings: settings)
    }

    /// The event's hour took it: `hourTotal` is the hour's new total, nil when the hour was closed.
    func added(_ event: UsageEventRecord, hourTotal: Int?) throws(MarketplaceLinkError) {
        guard let hourTotal else {
            throw .usageHourClosed(dimension: event.dimension, hourStart: Date(timeIntervalSince1970: Double(event.hourStart)))
        }
        guard hourTotal <= UsageRules.maxQuantityPerHour else { throw .usageHourFull(dimension: event.dimension) }
    }
}

/// RecordUsage's and the meter's rules, as pure functions: tested without sockets or databases
/// (`UsageRulesTests`).
enum UsageRules {
    static let maxEventsPerCall = 1000
    static let maxQuantityPerEvent = 1_000_000_000
    /// AWS takes an integer quantity per record up to this.
    static let maxQuantityPerHour = Int(Int32.max)
    /// How far ahead of our clock an event may claim to be (the data plane's clock may run ahead).
    static let clockSkew: TimeInterval = 300

    /// The request's events, checked before any storage is touched.
    static func check(_ request: RecordUsageRequest, settings: MeteringSettings, now: Date) throws(MarketplaceLinkError) -> [UsageEventRecord] {
        guard (1...maxEventsPerCall).contains(request.events.count) else {
            throw .invalid(field: "events", reason: "must hold 1 to \(maxEventsPerCall) events, not \(request.events.count)")
        }
        guard !settings.dimensions.isEmpty else { throw .meteringOff }
        return try request.events.enumerated().map { (index, event) throws(MarketplaceLinkError) in
            let field = "events[\(index)]"
            guard (1...128).contains(event.idempotencyKey.utf8.count), event.idempotencyKey.allSatisfy({ $0.isASCII && !$0.isWhitespace })
            else {
                throw .invalid(field: field + ".idempotencyKey", reason: "must be 1 to 128 ASCII characters without spaces")
            }
            guard (1...64).contains(event.organizationId.utf8.count) else {
                throw .invalid(field: field + ".organizationId", reason: "is required (at most 64 characters)")
            }
            guard settings.dimensions.contains(event.dimension) else {
                throw .invalid(
                    field: field + ".dimension",
                    reason: "'\(event.dimension.prefix(64))' is not metered; metered: \(settings.dimensions.sorted().joined(separator: ", "))")
            }
            guard (1...maxQuantityPerEvent).contains(Int(event.quantity)) else {
                throw .invalid(field: field + ".quantity", reason: "must be 1 to \(maxQuantityPerEvent)")
            }
            guard event.occurredAt.timeIntervalSince(now) <= clockSkew else {
                throw .invalid(field: field + ".occurredAt", reason: "is in the future")
            }
            // The hour must still be sendable once closed: AWS refuses records 6 hours old.
            let hourStart = settings.hourStart(of: event.occurredAt)
            guard Double(hourStart + settings.window - settings.hourSeconds) > now.timeIntervalSince1970 else {
                throw .usageTooOld
            }
            return UsageEventRecord(
                organizationID: event.organizationId, idempotencyKey: event.idempotencyKey, dimension: event.dimension,
                quantity: Int(event.quantity), occurredAt: event.occurredAt, hourStart: hourStart)
        }
    }

    /// Whether `link` (the organization's live link, if any) takes the event: an ACTIVE link whose
    /// contract has the dimension, whose metering AWS did not stop, and that was linked by the
    /// event's hour (AWS refuses usage from before the subscription). Returns that link.
    @discardableResult
    static func accept(_ event: UsageEventRecord, link: MeteredLink?, settings: MeteringSettings) throws(MarketplaceLinkError) -> MeteredLink {
        guard let link else { throw .notMetered(organizationID: event.organizationID, reason: "has no AWS Marketplace link") }
        switch link.state {
        case .active: break
        case .binding: throw .notMetered(organizationID: event.organizationID, reason: "is still being linked to AWS Marketplace")
        case .unsubscribePending, .cancelled, .failed:
            throw .notMetered(
                organizationID: event.organizationID, reason: "has cancelled its AWS Marketplace subscription; its usage is no longer billed there")
        }
        if let stopped = link.meteringStopped { throw .notMetered(organizationID: event.organizationID, reason: stopped) }
        guard link.offer.entitlements[event.dimension] != nil else {
            throw .notMetered(organizationID: event.organizationID, reason: "has a contract without the dimension \(event.dimension)")
        }
        guard event.hourStart >= settings.hourStart(of: link.linkedAt) else {
            throw .invalid(
                field: "occurredAt",
                reason: "is before organization \(event.organizationID) was linked to AWS Marketplace; that usage is not billed there")
        }
        return link
    }

    /// When an hour that starts at `hourStart` closes.
    static func freezeAt(hourStart: Int, settings: MeteringSettings) -> Int {
        hourStart + settings.hourSeconds + settings.grace
    }

    /// Whether a frozen hour can no longer reach AWS in time.
    static func isPastWindow(_ hour: UsageHourRecord, settings: MeteringSettings, now: Date) -> Bool {
        Double(hour.hourStart + settings.window - settings.sendMargin) <= now.timeIntervalSince1970
    }

    /// Each sent hour's outcome from AWS's answer: its result by status, or a retry when AWS
    /// handed it back unprocessed (or left it out).
    static func outcomes(of hours: [UsageHourRecord], result: BatchMeterUsageResult, retryAt: Date) -> [MeteringOutcome] {
        var byRecord: [UsageRecord: BatchMeterUsageResult.Result] = [:]
        for answer in result.results {
            if let record = answer.usageRecord { byRecord[record] = answer }
        }
        return hours.map { hour in
            guard let answer = byRecord[hour.usageRecord] else {
                return .retry(at: retryAt, error: "AWS Marketplace did not process the record")
            }
            switch answer.status {
            case "Success":
                guard let id = answer.meteringRecordID else { return .retry(at: retryAt, error: "Success without a MeteringRecordId") }
                return .sent(meteringRecordID: id)
            case "CustomerNotSubscribed": return .notSubscribed
            case "DuplicateRecord": return .duplicate
            case let status: return .refused("unknown status \(status ?? "none")")
            }
        }
    }

    /// Whether AWS refused the call for what a record says (a whole call is refused for one
    /// such record), rather than for who sent it or when: only then is a record REFUSED.
    static func refusesRecords(_ error: AWSMarketplaceError) -> Bool {
        switch error.kind {
        case .timestampOutOfBounds, .invalidUsageDimension, .invalidLicense, .invalidCustomerIdentifier, .invalidProductCode,
            .invalidUsageAllocations, .invalidTag, .invalidParameter:
            true
        default:
            false
        }
    }

    /// The month (UTC) `date` falls in, from its first instant.
    static func monthStart(of date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: calendar.dateComponents([.year, .month], from: date))!
    }

    /// An organization's usage report from its hours this month.
    static func report(organizationID: String, monthStart: Date, hours: [UsageHourRecord]) -> UsageReport {
        var totals: [String: (all: Int64, sent: Int64)] = [:]
        for hour in hours {
            totals[hour.dimension, default: (0, 0)].all += Int64(hour.quantity)
            if hour.state == .sent { totals[hour.dimension, default: (0, 0)].sent += Int64(hour.quantity) }
        }
        return UsageReport(
            organizationId: organizationID, monthStart: monthStart,
            dimensions: totals.sorted { $0.key < $1.key }.map {
                DimensionUsage(dimension: $0.key, quantity: $0.value.all, sentQuantity: $0.value.sent)
            },
            hours: hours.sorted { ($0.hourStart, $0.dimension) > ($1.hourStart, $1.dimension) }.map { hour in
                UsageHour(
                    dimension: hour.dimension, hourStart: Date(timeIntervalSince1970: Double(hour.hourStart)), quantity: Int64(hour.quantity),
                    state: hour.state, meteringRecordId: hour.meteringRecordID, detail: hour.detail)
            })
    }
}
