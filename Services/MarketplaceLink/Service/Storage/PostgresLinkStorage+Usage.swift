import ConnectTransport
import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceRuntime

/// Usage metering in PostgreSQL (the tables `UsageStore` describes). Several replicas record
/// events and send hours at once, kept right by:
/// - the organization's link is read `FOR SHARE`, so a link changing state (locked `FOR UPDATE`)
///   waits for the events being recorded, or they see its new state;
/// - an hour's row is the lock between adding an event and freezing the hour: the add is an
///   upsert that changes only an OPEN row, so an event lands in the frozen total or is refused;
/// - an event's key is its primary key: of two concurrent retries, one inserts and the other
///   finds it (and counts a duplicate);
/// - frozen hours are leased with `FOR UPDATE SKIP LOCKED`, so each is sent by one replica at a time.
extension PostgresLinkStorage {
    static let usageMigration = PostgresMigration(
        "marketplace-link v2: usage metering",
        [
            // A link AWS said is not subscribed (CustomerNotSubscribed): its usage is refused from then on.
            "ALTER TABLE link ADD COLUMN metering_stopped text",
            """
            CREATE TABLE usage_event (
                organization_id text NOT NULL, idempotency_key text NOT NULL, link_id text NOT NULL REFERENCES link(id),
                dimension text NOT NULL, quantity bigint NOT NULL, occurred_at timestamptz NOT NULL, hour_start bigint NOT NULL,
                recorded_at timestamptz NOT NULL,
                PRIMARY KEY (organization_id, idempotency_key))
            """,
            // hour_start and freeze_at are epoch seconds; the customer columns are the link's when the hour opened.
            """
            CREATE TABLE usage_hour (
                link_id text NOT NULL REFERENCES link(id), dimension text NOT NULL, hour_start bigint NOT NULL,
                organization_id text NOT NULL, quantity bigint NOT NULL, events integer NOT NULL,
                product_code text NOT NULL, customer_identifier text NOT NULL, aws_account_id text NOT NULL, license_arn text,
                state text NOT NULL CHECK (state IN ('OPEN', 'FROZEN', 'SENT', 'NOT_SUBSCRIBED', 'DUPLICATE', 'REFUSED', 'EXPIRED')),
                freeze_at bigint NOT NULL, frozen_at timestamptz, attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz,
                lease_until timestamptz, metering_record_id text, detail text, updated_at timestamptz NOT NULL,
                PRIMARY KEY (link_id, dimension, hour_start))
            """,
            "CREATE INDEX usage_hour_open ON usage_hour (freeze_at) WHERE state = 'OPEN'",
            "CREATE INDEX usage_hour_frozen ON usage_hour (next_attempt_at) WHERE state = 'FROZEN'",
            "CREATE INDEX usage_hour_organization ON usage_hour (organization_id, hour_start)"
        ])

    func recordUsage(_ events: [UsageEventRecord], admission: UsageAdmission, at: Date) async throws -> (accepted: Int, duplicates: Int) {
        let trace = TraceContext.traceParent()
        return try await database.transaction { [logger] connection in
            var links: [String: MeteredLink?] = [:]
            var (accepted, duplicates) = (0, 0)
            for event in events {
                if try admission.isRetry(event, stored: await Self.storedEvent(connection, event, logger: logger)) {
                    duplicates += 1
                    continue
                }
                if links[event.organizationID] == nil {
                    links[event.organizationID] = try await Self.meteredLink(connection, organizationID: event.organizationID, logger: logger)
                }
                let link = try admission.link(for: event, links[event.organizationID] ?? nil)
                let inserted = try await !connection.query(
                    """
                    INSERT INTO usage_event (organization_id, idempotency_key, link_id, dimension, quantity, occurred_at, hour_start, recorded_at)
                    VALUES (\(event.organizationID), \(event.idempotencyKey), \(link.id), \(event.dimension), \(Int64(event.quantity)),
                            \(event.occurredAt), \(Int64(event.hourStart)), \(at))
                    ON CONFLICT (organization_id, idempotency_key) DO NOTHING
                    RETURNING 1
                    """, logger: logger
                ).collect().isEmpty
                // Not inserted: a concurrent call recorded the same key first.
                if !inserted, try admission.isRetry(event, stored: await Self.storedEvent(connection, event, logger: logger)) {
                    duplicates += 1
                    continue
                }
                let total = try await connection.query(
                    """
                    INSERT INTO usage_hour (link_id, dimension, hour_start, organization_id, quantity, events, product_code, customer_identifier,
                                            aws_account_id, license_arn, state, freeze_at, updated_at, trace_parent)
                    VALUES (\(link.id), \(event.dimension), \(Int64(event.hourStart)), \(event.organizationID), \(Int64(event.quantity)), 1,
                            \(link.offer.productCode), \(link.customerIdentifier), \(link.offer.awsAccountID), \(link.offer.licenseArn), 'OPEN',
                            \(Int64(admission.freezeAt(event))), \(at), \(trace))
                    ON CONFLICT (link_id, dimension, hour_start) DO UPDATE SET quantity = usage_hour.quantity + excluded.quantity,
                        events = usage_hour.events + 1, updated_at = excluded.updated_at
                    WHERE usage_hour.state = 'OPEN'
                    RETURNING quantity
                    """, logger: logger
                ).collect().first.map { Int(try $0.decode(Int64.self)) }
                try admission.added(event, hourTotal: total)
                accepted += 1
            }
            return (accepted, duplicates)
        }
    }

    func freezeUsageHours(at: Date) async throws -> Int {
        try await database.client.query(
            """
            UPDATE usage_hour SET state = 'FROZEN', frozen_at = \(at), next_attempt_at = \(at), updated_at = \(at)
            WHERE state = 'OPEN' AND freeze_at <= \(Int64(at.timeIntervalSince1970))
            RETURNING 1
            """, logger: logger
        ).collect().count
    }

    func leaseFrozenHours(at: Date, until: Date, limit: Int) async throws -> [UsageHourRecord] {
        try await Self.hours(
            database.client.query(
                """
                UPDATE usage_hour SET lease_until = \(until) WHERE (link_id, dimension, hour_start) IN (
                    SELECT link_id, dimension, hour_start FROM usage_hour
                    WHERE state = 'FROZEN' AND next_attempt_at <= \(at) AND (lease_until IS NULL OR lease_until <= \(at))
                    ORDER BY hour_start LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING \(unescaped: Self.hourColumns)
                """, logger: logger))
    }

    func recordMeteringOutcomes(_ outcomes: [(hour: UsageHourRecord, outcome: MeteringOutcome)], at: Date) async throws {
        try await database.transaction { [logger] connection in
            for (hour, outcome) in outcomes {
                let (recordID, nextAttemptAt) = outcome.stored
                try await connection.query(
                    """
                    UPDATE usage_hour SET state = \(outcome.state.rawValue), metering_record_id = COALESCE(\(recordID), metering_record_id),
                        detail = \(outcome.detail), attempts = attempts + 1, next_attempt_at = \(nextAttemptAt), lease_until = NULL, updated_at = \(at)
                    WHERE link_id = \(hour.linkID) AND dimension = \(hour.dimension) AND hour_start = \(Int64(hour.hourStart)) AND state = 'FROZEN'
                    """, logger: logger)
                if outcome == .notSubscribed {
                    try await connection.query(
                        "UPDATE link SET metering_stopped = \(MeteringOutcome.notSubscribedReason) WHERE id = \(hour.linkID) AND metering_stopped IS NULL",
                        logger: logger)
                    try await Self.closeOpenHours(connection, linkID: hour.linkID, at: at, logger: logger)
                }
            }
        }
    }

    func nextMeteringDue() async throws -> Date? {
        try await database.client.query(
            """
            SELECT LEAST(
                (SELECT to_timestamp(MIN(freeze_at)) FROM usage_hour WHERE state = 'OPEN'),
                (SELECT MIN(GREATEST(next_attempt_at, lease_until)) FROM usage_hour WHERE state = 'FROZEN'))
            """, logger: logger
        ).collect().first.flatMap { try $0.decode(Date?.self) }
    }

    func usageHours(organizationID: String, since: Date) async throws -> [UsageHourRecord] {
        try await Self.hours(
            database.client.query(
                """
                SELECT \(unescaped: Self.hourColumns) FROM usage_hour
                WHERE organization_id = \(organizationID) AND hour_start >= \(Int64(since.timeIntervalSince1970))
                ORDER BY hour_start DESC, dimension
                """, logger: logger))
    }

    /// The link no longer takes usage: its open hours close now, to be sent at once.
    static func closeOpenHours(_ connection: PostgresConnection, linkID: String, at: Date, logger: Logger) async throws {
        try await connection.query(
            "UPDATE usage_hour SET freeze_at = LEAST(freeze_at, \(Int64(at.timeIntervalSince1970))) WHERE link_id = \(linkID) AND state = 'OPEN'",
            logger: logger)
    }

    // MARK: Rows

    private static func storedEvent(_ connection: PostgresConnection, _ event: UsageEventRecord, logger: Logger) async throws -> UsageEventRecord? {
        try await connection.query(
            """
            SELECT dimension, quantity, occurred_at, hour_start FROM usage_event
            WHERE organization_id = \(event.organizationID) AND idempotency_key = \(event.idempotencyKey)
            """, logger: logger
        ).collect().first.map { row in
            let (dimension, quantity, occurredAt, hourStart) = try row.decode((String, Int64, Date, Int64).self)
            return UsageEventRecord(
                organizationID: event.organizationID, idempotencyKey: event.idempotencyKey, dimension: dimension, quantity: Int(quantity),
                occurredAt: occurredAt, hourStart: Int(hourStart))
        }
    }

    /// The organization's live link, else its latest, shared-locked for the rest of the transaction.
    private static func meteredLink(_ connection: PostgresConnection, organizationID: String, logger: Logger) async throws -> MeteredLink? {
        try await connection.query(
            """
            SELECT l.id, l.state, l.offer::text, l.metering_stopped, l.linked_at, r.customer_identifier
            FROM link l JOIN registration r ON r.id = l.registration_id WHERE l.organization_id = \(organizationID)
            ORDER BY CASE WHEN l.state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING') THEN 0 ELSE 1 END, l.linked_at DESC LIMIT 1
            FOR SHARE OF l
            """, logger: logger
        ).collect().first.map { row in
            let (id, state, offer, stopped, linkedAt, customer) = try row.decode((String, String, String, String?, Date, String).self)
            return MeteredLink(
                id: id, state: LinkState(rawValue: state) ?? .failed,
                offer: try JSONDecoder().decode(OfferRecord.self, from: Data(offer.utf8)), customerIdentifier: customer, linkedAt: linkedAt,
                meteringStopped: stopped)
        }
    }

    private static let hourColumns = """
        link_id, organization_id, dimension, hour_start, quantity, product_code, customer_identifier, aws_account_id, license_arn, state,
        attempts, metering_record_id, detail, trace_parent
        """

    private static func hours(_ rows: PostgresRowSequence) async throws -> [UsageHourRecord] {
        try await rows.collect().map { row in
            let (
                linkID, organizationID, dimension, hourStart, quantity, productCode, customer, account, license, state, attempts, recordID, detail,
                trace
            ) =
                try row.decode((String, String, String, Int64, Int64, String, String, String, String?, String, Int32, String?, String?, String?).self)
            return UsageHourRecord(
                linkID: linkID, organizationID: organizationID, dimension: dimension, hourStart: Int(hourStart), quantity: Int(quantity),
                productCode: productCode, customerIdentifier: customer, awsAccountID: account, licenseArn: license,
                state: MeteringState(rawValue: state) ?? .refused, attempts: Int(attempts), meteringRecordID: recordID, detail: detail,
                traceParent: trace)
        }
    }
}
