import Contracts
import Foundation
import GRDB

/// marketplace-link's usage tables in SQLite, read and written inside the caller's transaction.
/// `usage_event` keeps every event by (organization, idempotency key), so a retry is recognised;
/// `usage_hour` is the (link, dimension, hour) aggregate, OPEN while events arrive, then FROZEN:
/// the record sent to AWS, unchanged, until AWS answers for it.
enum UsageStore {
    static let sqliteSchema = """
        -- A link AWS said is not subscribed (CustomerNotSubscribed): its usage is refused from then on.
        ALTER TABLE link ADD COLUMN metering_stopped TEXT;
        CREATE TABLE usage_event (
            organization_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            link_id TEXT NOT NULL REFERENCES link(id),
            dimension TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            occurred_at REAL NOT NULL,
            hour_start INTEGER NOT NULL,
            recorded_at REAL NOT NULL,
            PRIMARY KEY (organization_id, idempotency_key)
        );
        -- hour_start and freeze_at are epoch seconds; the customer columns are copied from the link
        -- when the hour opens, so the frozen record never changes.
        CREATE TABLE usage_hour (
            link_id TEXT NOT NULL REFERENCES link(id),
            dimension TEXT NOT NULL,
            hour_start INTEGER NOT NULL,
            organization_id TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            events INTEGER NOT NULL,
            product_code TEXT NOT NULL,
            customer_identifier TEXT NOT NULL,
            aws_account_id TEXT NOT NULL,
            license_arn TEXT,
            state TEXT NOT NULL CHECK (state IN ('OPEN', 'FROZEN', 'SENT', 'NOT_SUBSCRIBED', 'DUPLICATE', 'REFUSED', 'EXPIRED')),
            freeze_at INTEGER NOT NULL,
            frozen_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            lease_until REAL,
            metering_record_id TEXT,
            detail TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (link_id, dimension, hour_start)
        );
        CREATE INDEX usage_hour_open ON usage_hour(freeze_at) WHERE state = 'OPEN';
        CREATE INDEX usage_hour_frozen ON usage_hour(next_attempt_at) WHERE state = 'FROZEN';
        CREATE INDEX usage_hour_organization ON usage_hour(organization_id, hour_start);
        """

    /// The organization's live link, else its latest, with what metering needs of it.
    static func meteredLink(_ db: Database, organizationID: String) throws -> MeteredLink? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT l.id, l.state, l.offer, l.metering_stopped, l.linked_at, r.customer_identifier
                    FROM link l JOIN registration r ON r.id = l.registration_id WHERE l.organization_id = ?
                    ORDER BY CASE WHEN l.state IN \(LinkStore.liveStates) THEN 0 ELSE 1 END, l.linked_at DESC LIMIT 1
                    """, arguments: [organizationID])
        else { return nil }
        return MeteredLink(
            id: row["id"], state: LinkState(rawValue: row["state"]) ?? .failed,
            offer: try JSONDecoder().decode(OfferRecord.self, from: Data((row["offer"] as String).utf8)),
            customerIdentifier: row["customer_identifier"], linkedAt: Date(timeIntervalSince1970: row["linked_at"]),
            meteringStopped: row["metering_stopped"])
    }

    static func storedEvent(_ db: Database, organizationID: String, key: String) throws -> UsageEventRecord? {
        // Cached statements: RecordUsage runs these once per event, up to 1000 in a transaction.
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT * FROM usage_event WHERE organization_id = ? AND idempotency_key = ?"),
            arguments: [organizationID, key]
        ).map { row in
            UsageEventRecord(
                organizationID: row["organization_id"], idempotencyKey: row["idempotency_key"], dimension: row["dimension"],
                quantity: row["quantity"], occurredAt: Date(timeIntervalSince1970: row["occurred_at"]), hourStart: row["hour_start"])
        }
    }

    /// Stores the event and adds it to its hour if that hour is OPEN; returns the hour's new total,
    /// nil when the hour is closed.
    /// `trace` (the calling trace's `traceparent`) is kept on an hour this event opens.
    static func add(_ db: Database, _ event: UsageEventRecord, to link: MeteredLink, freezeAt: Int, at: Date, trace: String?) throws -> Int? {
        try db.cachedStatement(
            sql: """
                INSERT INTO usage_event (organization_id, idempotency_key, link_id, dimension, quantity, occurred_at, hour_start, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                event.organizationID, event.idempotencyKey, link.id, event.dimension, event.quantity, event.occurredAt.timeIntervalSince1970,
                event.hourStart, at.timeIntervalSince1970
            ])
        return try Int.fetchOne(
            db.cachedStatement(
                sql: """
                    INSERT INTO usage_hour (link_id, dimension, hour_start, organization_id, quantity, events, product_code, customer_identifier,
                                            aws_account_id, license_arn, state, freeze_at, updated_at, trace_parent)
                    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, 'OPEN', ?, ?, ?)
                    ON CONFLICT (link_id, dimension, hour_start) DO UPDATE SET quantity = quantity + excluded.quantity, events = events + 1,
                        updated_at = excluded.updated_at
                    WHERE state = 'OPEN'
                    RETURNING quantity
                    """),
            arguments: [
                link.id, event.dimension, event.hourStart, event.organizationID, event.quantity, link.offer.productCode,
                link.customerIdentifier, link.offer.awsAccountID, link.offer.licenseArn, freezeAt, at.timeIntervalSince1970, trace
            ])
    }

    /// The link no longer takes usage: its open hours close now, to be sent at once.
    static func closeOpenHours(_ db: Database, linkID: String, at: Date) throws {
        try db.execute(
            sql: "UPDATE usage_hour SET freeze_at = MIN(freeze_at, ?) WHERE link_id = ? AND state = 'OPEN'",
            arguments: [Int(at.timeIntervalSince1970), linkID])
    }

    static func freeze(_ db: Database, at: Date) throws -> Int {
        try db.execute(
            sql: """
                UPDATE usage_hour SET state = 'FROZEN', frozen_at = ?1, next_attempt_at = ?1, updated_at = ?1
                WHERE state = 'OPEN' AND freeze_at <= ?2
                """, arguments: [at.timeIntervalSince1970, Int(at.timeIntervalSince1970)])
        return db.changesCount
    }

    static func leaseFrozen(_ db: Database, at: Date, until: Date, limit: Int) throws -> [UsageHourRecord] {
        let hours = try Row.fetchAll(
            db,
            sql: """
                SELECT * FROM usage_hour WHERE state = 'FROZEN' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
                ORDER BY hour_start LIMIT ?2
                """, arguments: [at.timeIntervalSince1970, limit]
        ).map(hour(_:))
        for hour in hours {
            try db.execute(
                sql: "UPDATE usage_hour SET lease_until = ? WHERE link_id = ? AND dimension = ? AND hour_start = ?",
                arguments: [until.timeIntervalSince1970, hour.linkID, hour.dimension, hour.hourStart])
        }
        return hours
    }

    static func record(_ db: Database, _ outcome: MeteringOutcome, of hour: UsageHourRecord, at: Date) throws {
        let (recordID, nextAttemptAt) = outcome.stored
        try db.execute(
            sql: """
                UPDATE usage_hour SET state = ?, metering_record_id = COALESCE(?, metering_record_id), detail = ?, attempts = attempts + 1,
                    next_attempt_at = ?, lease_until = NULL, updated_at = ?
                WHERE link_id = ? AND dimension = ? AND hour_start = ? AND state = 'FROZEN'
                """,
            arguments: [
                outcome.state.rawValue, recordID, outcome.detail, nextAttemptAt?.timeIntervalSince1970, at.timeIntervalSince1970,
                hour.linkID, hour.dimension, hour.hourStart
            ])
        if outcome == .notSubscribed {
            try db.execute(
                sql: "UPDATE link SET metering_stopped = ? WHERE id = ? AND metering_stopped IS NULL",
                arguments: [MeteringOutcome.notSubscribedReason, hour.linkID])
            try closeOpenHours(db, linkID: hour.linkID, at: at)
        }
    }

    static func nextDue(_ db: Database) throws -> Date? {
        try Double.fetchOne(
            db,
            sql: """
                SELECT MIN(due) FROM (
                    SELECT MIN(freeze_at) AS due FROM usage_hour WHERE state = 'OPEN'
                    UNION ALL
                    SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM usage_hour WHERE state = 'FROZEN')
                """
        ).map(Date.init(timeIntervalSince1970:))
    }

    static func hours(_ db: Database, organizationID: String, since: Date) throws -> [UsageHourRecord] {
        try Row.fetchAll(
            db, sql: "SELECT * FROM usage_hour WHERE organization_id = ? AND hour_start >= ? ORDER BY hour_start DESC, dimension",
            arguments: [organizationID, Int(since.timeIntervalSince1970)]
        ).map(hour(_:))
    }

    private static func hour(_ row: Row) -> UsageHourRecord {
        UsageHourRecord(
            linkID: row["link_id"], organizationID: row["organization_id"], dimension: row["dimension"], hourStart: row["hour_start"],
            quantity: row["quantity"], productCode: row["product_code"], customerIdentifier: row["customer_identifier"],
            awsAccountID: row["aws_account_id"], licenseArn: row["license_arn"],
            state: MeteringState(rawValue: row["state"]) ?? .refused, attempts: row["attempts"], meteringRecordID: row["metering_record_id"],
            detail: row["detail"], traceParent: row["trace_parent"])
    }
}
