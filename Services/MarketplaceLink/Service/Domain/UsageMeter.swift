import AWSMarketplace
import ConnectTransport
import Contracts
import Foundation
import Logging
import ServiceRuntime

/// Usage metering: RecordUsage stores the data plane's events durably into per-(link,
/// dimension, hour) aggregates; the meter closes each hour once it is over (and its grace), which
/// freezes it as the record to send, then sends it with BatchMeterUsage until AWS answers for it.
/// A retry resends exactly the frozen record, so AWS's deduplication makes it count once.
final class UsageMeter: Sendable {
    private let storage: any LinkStorage
    private let metering: MarketplaceMeteringClient
    private let settings: MeteringSettings
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// `metering_usage_hours_total{outcome}`: what became of each hour sent (or not).
    private let metrics: ServerMetrics
    /// How long a replica owns the frozen hours it took: longer than a send (with its retries) takes.
    private let lease: TimeInterval = 60
    let wake = WakeSignal()

    init(
        storage: any LinkStorage, metering: MarketplaceMeteringClient, settings: MeteringSettings, metrics: ServerMetrics,
        now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.storage = storage
        self.metering = metering
        self.settings = settings
        self.now = now
        self.logger = logger
        self.metrics = metrics
    }

    /// RecordUsage: all the events are durable before the answer, or none is recorded.
    func record(_ request: RecordUsageRequest) async throws -> RecordUsageResponse {
        let at = now()
        let events = try UsageRules.check(request, settings: settings, now: at)
        let (accepted, duplicates) = try await storage.recordUsage(events, admission: UsageAdmission(settings: settings), at: at)
        return RecordUsageResponse(accepted: Int32(accepted), duplicates: Int32(duplicates))
    }

    /// The background sender: each round freezes the hours that are over and sends the frozen
    /// ones due, 25 records a call, one product a call; it sleeps until the next hour closes or
    /// retry falls due (another replica's new hours are seen at the next poll).
    func runner() -> DurableWorkRunner {
        DurableWorkRunner(
            name: "usage metering", wake: wake, batchSize: 4,
            idleWait: .milliseconds(Int64(max(200, min(30_000, settings.hourSeconds * 1000 / 20)))),
            due: { [self] in try await dueCalls() }, perform: { [self] in await send($0) },
            nextDue: { [storage] in try await storage.nextMeteringDue() }, now: now, logger: logger)
    }

    /// Freezes what is over, then leases frozen hours and groups them into calls.
    private func dueCalls() async throws -> [[UsageHourRecord]] {
        let at = now()
        let frozen = try await storage.freezeUsageHours(at: at)
        if frozen > 0 { logger.info("usage hours closed for metering", metadata: ["hours": "\(frozen)"]) }
        let hours = try await storage.leaseFrozenHours(at: at, until: at.addingTimeInterval(lease), limit: 100)
        return Dictionary(grouping: hours, by: \.productCode).values.flatMap { sameProduct in
            stride(from: 0, to: sameProduct.count, by: 25).map { Array(sameProduct[$0..<min($0 + 25, sameProduct.count)]) }
        }
    }

    /// Sends one call's hours and stores what became of each.
    private func send(_ hours: [UsageHourRecord]) async {
        await BackgroundSpan.run("usage metering", linkedTo: hours.map(\.traceParent)) { span in
            span.attributes["metering.records"] = hours.count
            span.attributes["metering.product_code"] = hours.first?.productCode
            await sendInSpan(hours)
        }
    }

    private func sendInSpan(_ hours: [UsageHourRecord]) async {
        let results = await outcomes(of: hours)
        do {
            try await storage.recordMeteringOutcomes(results, at: now())
        } catch {
            // The lease runs out and the same records are sent again: AWS deduplicates them.
            logger.error("could not store metering results; the hours will be sent again", metadata: ["error": "\(error)"])
            return
        }
        for (hour, outcome) in results { report(outcome, of: hour) }
    }

    private func outcomes(of hours: [UsageHourRecord]) async -> [(hour: UsageHourRecord, outcome: MeteringOutcome)] {
        let at = now()
        var (results, live): ([(hour: UsageHourRecord, outcome: MeteringOutcome)], [UsageHourRecord]) = ([], [])
        for hour in hours {
            if UsageRules.isPastWindow(hour, settings: settings, now: at) { results.append((hour, .expired)) } else { live.append(hour) }
        }
        guard let productCode = live.first?.productCode else { return results }
        do {
            let answer = try await metering.batchMeterUsage(productCode: productCode, records: live.map(\.usageRecord))
            let retryAt = retryTime(for: live)
            results += zip(live, UsageRules.outcomes(of: live, result: answer, retryAt: retryAt)).map { (hour: $0, outcome: $1) }
        } catch {
            if !UsageRules.refusesRecords(error) {
                // Throttling, AWS's own failures, no answer, and also our credentials refused: not
                // the records' fault, so they wait (until the window ends) for it to pass or be fixed.
                let retry = MeteringOutcome.retry(at: retryTime(for: live), error: "\(error)")
                results += live.map { (hour: $0, outcome: retry) }
            } else if live.count > 1 {
                // AWS refuses a whole call for one bad record: find which by sending each alone.
                for hour in live { results += await outcomes(of: [hour]) }
            } else {
                results += live.map { (hour: $0, outcome: .refused("\(error)")) }
            }
        }
        return results
    }

    private func retryTime(for hours: [UsageHourRecord]) -> Date {
        let attempts = hours.map(\.attempts).max() ?? 0
        return now().addingTimeInterval(RetryBackoff.delay(afterAttempts: attempts, cap: max(1, min(60, Double(settings.hourSeconds) / 8))))
    }

    /// Counts the outcome; what is not billed is logged as an error an operator must see.
    private func report(_ outcome: MeteringOutcome, of hour: UsageHourRecord) {
        metrics.count(
            namespace: "metering", subsystem: "usage", name: "hours",
            help: "Usage hours by what AWS Marketplace answered: sent, retry, not_subscribed, duplicate, refused, expired.",
            label: ("outcome", outcome.label))
        var metadata: Logger.Metadata = [
            "link": "\(hour.linkID)", "organization": "\(hour.organizationID)", "dimension": "\(hour.dimension)",
            "hour": "\(Date(timeIntervalSince1970: Double(hour.hourStart)).formatted(.iso8601))", "quantity": "\(hour.quantity)"
        ]
        switch outcome {
        case .sent(let id):
            metadata["metering_record_id"] = "\(id)"
            logger.info("usage sent to AWS Marketplace", metadata: metadata)
        case .retry(let at, let error):
            metadata["error"] = "\(error)"
            metadata["next_attempt"] = "\(at.formatted(.iso8601))"
            logger.warning("usage not sent yet; retrying", metadata: metadata)
        case .notSubscribed:
            logger.error("AWS Marketplace says the customer is not subscribed: usage not billed, metering stopped for the link", metadata: metadata)
        case .duplicate:
            logger.critical(
                "AWS Marketplace had another quantity for this hour (DuplicateRecord): usage not billed; a frozen hour changed, a bug",
                metadata: metadata)
        case .refused(let reason):
            metadata["error"] = "\(reason)"
            logger.error("AWS Marketplace refused a usage record: usage not billed", metadata: metadata)
        case .expired:
            logger.error("usage hour not sent within AWS Marketplace's 6 hours: kept as EXPIRED, not billed", metadata: metadata)
        }
    }
}
