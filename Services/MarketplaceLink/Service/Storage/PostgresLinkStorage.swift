import AWSMarketplace
import ConnectTransport
import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceRuntime

/// marketplace-link's storage in PostgreSQL, shared by any number of replicas. Transactions run
/// at READ COMMITTED; what SQLite's single writer made safe is made safe here by:
/// - binding: the claim's registration row is locked (`FOR UPDATE`), so of concurrent binds of
///   one claim the first uses it and the others find it used; the partial unique indexes keep
///   one live link per account and per organization, a violation answered as such;
/// - a customer's events and registration: a transaction advisory lock on the customer, so an
///   event that finds no registration is seen waiting by the registration that comes meanwhile;
/// - a link's state: its row is locked before `LinkLifecycle` rules an event on it;
/// - background work: leases (`step_lease_until`, `lease_until`) taken by one atomic UPDATE, the
///   refreshes with `FOR UPDATE SKIP LOCKED`, so replicas never take the same item.
/// Every link write is announced on `linksChannel`, which every replica's billing pages listen to.
struct PostgresLinkStorage: LinkStorage {
    let database: PostgresBackend
    static let linksChannel = "marketplace_link_links"

    var logger: Logger { database.logger }

    static let migrations = [
        PostgresMigration(
            "marketplace-link v1: registrations, links, SNS messages, leases",
            [
                // A resolved registration, pending until bound. The registration token itself is never stored.
                """
                CREATE TABLE registration (
                    id text PRIMARY KEY, aws_account_id text NOT NULL, customer_identifier text NOT NULL, product_code text NOT NULL,
                    offer jsonb NOT NULL, claim_hash text NOT NULL UNIQUE, claim_expires_at timestamptz NOT NULL, claim_used_at timestamptz,
                    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
                    closed_reason text, closed_at timestamptz,
                    UNIQUE (aws_account_id, product_code))
                """,
                "CREATE INDEX registration_customer ON registration (customer_identifier, product_code)",
                // pending_step: what the link still owes organization, retried until it answers.
                """
                CREATE TABLE link (
                    id text PRIMARY KEY, registration_id text NOT NULL REFERENCES registration(id),
                    aws_account_id text NOT NULL, product_code text NOT NULL, organization_id text NOT NULL, offer jsonb NOT NULL,
                    state text NOT NULL CHECK (state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING', 'CANCELLED', 'FAILED')),
                    linked_by text NOT NULL, linked_at timestamptz NOT NULL, failure_reason text,
                    attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz, updated_at timestamptz NOT NULL,
                    pending_step text CHECK (pending_step IN ('SET_BILLING', 'CLEAR_BILLING')), step_lease_until timestamptz)
                """,
                """
                CREATE UNIQUE INDEX link_one_per_account ON link (aws_account_id, product_code)
                    WHERE state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING')
                """,
                """
                CREATE UNIQUE INDEX link_one_per_organization ON link (organization_id)
                    WHERE state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING')
                """,
                "CREATE INDEX link_due ON link (next_attempt_at) WHERE pending_step IS NOT NULL",
                // Every SNS message taken, by MessageId. WAITING: no registration yet; REFRESH: entitlements to fetch.
                """
                CREATE TABLE sns_message (
                    message_id text PRIMARY KEY, type text NOT NULL, topic_arn text NOT NULL, sent_at timestamptz NOT NULL,
                    received_at timestamptz NOT NULL, action text, customer_identifier text, product_code text, offer_identifier text,
                    state text NOT NULL CHECK (state IN ('APPLIED', 'WAITING', 'REFRESH', 'IGNORED')),
                    attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz, detail text, lease_until timestamptz)
                """,
                "CREATE INDEX sns_message_waiting ON sns_message (customer_identifier, product_code, sent_at) WHERE state = 'WAITING'",
                "CREATE INDEX sns_message_refresh ON sns_message (next_attempt_at) WHERE state = 'REFRESH'",
                "CREATE TABLE sns_subscription (topic_arn text PRIMARY KEY, confirmed_at timestamptz NOT NULL)"
            ]),
        PostgresLinkStorage.usageMigration,
        // The trace of the call that made a link owe a step, or opened a usage hour, so the
        // background work's spans link back to it.
        PostgresMigration(
            "marketplace-link v3: background work remembers its trace",
            ["ALTER TABLE link ADD COLUMN trace_parent text", "ALTER TABLE usage_hour ADD COLUMN trace_parent text"])
    ]

    // MARK: Registrations

    func registration(claimHash: String) async throws -> Registration? {
        try await Self.registrations(database.client.query("\(unescaped: Self.registrationColumns) WHERE claim_hash = \(claimHash)", logger: logger))
            .first
    }

    func liveOrganization(awsAccountID: String, productCode: String) async throws -> String? {
        try await database.client.query(
            """
            SELECT organization_id FROM link
            WHERE aws_account_id = \(awsAccountID) AND product_code = \(productCode) AND state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING')
            """, logger: logger
        ).collect().first.map { try $0.decode(String.self) }
    }

    func register(offer: OfferRecord, customerIdentifier: String, claimHash: String, claimExpiresAt: Date, at: Date) async throws -> Registration {
        try await database.transaction { [logger] connection in
            try await Self.lockCustomer(connection, customerIdentifier, offer.productCode, logger: logger)
            try await connection.query(
                """
                INSERT INTO registration (id, aws_account_id, customer_identifier, product_code, offer, claim_hash, claim_expires_at, created_at, updated_at)
                VALUES (\(UUID().uuidString.lowercased()), \(offer.awsAccountID), \(customerIdentifier), \(offer.productCode), \(offer.json)::jsonb,
                        \(claimHash), \(claimExpiresAt), \(at), \(at))
                ON CONFLICT (aws_account_id, product_code) DO UPDATE SET customer_identifier = excluded.customer_identifier,
                    offer = excluded.offer, claim_hash = excluded.claim_hash, claim_expires_at = excluded.claim_expires_at,
                    claim_used_at = NULL, updated_at = excluded.updated_at,
                    closed_reason = CASE WHEN registration.customer_identifier = excluded.customer_identifier THEN registration.closed_reason END,
                    closed_at = CASE WHEN registration.customer_identifier = excluded.customer_identifier THEN registration.closed_at END
                """, logger: logger)
            guard
                var registration = try await Self.registrations(
                    connection.query("\(unescaped: Self.registrationColumns) WHERE claim_hash = \(claimHash)", logger: logger)
                ).first
            else { throw PostgresStorageError("the registration just stored is not there") }
            let waiting = try await connection.query(
                """
                SELECT message_id, action FROM sns_message
                WHERE state = 'WAITING' AND customer_identifier = \(customerIdentifier) AND product_code = \(offer.productCode)
                ORDER BY sent_at, received_at
                """, logger: logger
            ).collect()
            for row in waiting {
                let (messageID, actionText) = try row.decode((String, String?).self)
                guard let action = actionText.flatMap(MarketplaceSubscriptionEvent.Action.init(rawValue:)) else { continue }
                let effect = try await Self.apply(
                    connection, SubscriptionLifecycle.changeWhenRegistering(for: action, to: registration), to: &registration, at: at,
                    logger: logger)
                try await Self.setState(connection, messageID: messageID, effect, at: at, logger: logger)
            }
            return registration
        }
    }

    // MARK: Links and the binding saga

    func link(id: String) async throws -> Link? {
        try await Self.links(database.client.query("\(unescaped: Self.linkColumns) WHERE id = \(id)", logger: logger)).first
    }

    func latestLink(organizationID: String) async throws -> Link? {
        try await Self.links(
            database.client.query(
                """
                \(unescaped: Self.linkColumns) WHERE organization_id = \(organizationID)
                ORDER BY CASE WHEN state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING') THEN 0 ELSE 1 END, linked_at DESC LIMIT 1
                """, logger: logger)
        ).first
    }

    func links(state: LinkState?, limit: Int) async throws -> [Link] {
        try await Self.links(
            database.client.query(
                "\(unescaped: Self.linkColumns) WHERE \(state?.rawValue)::text IS NULL OR state = \(state?.rawValue) ORDER BY linked_at DESC LIMIT \(limit)",
                logger: logger))
    }

    func recordBinding(
        claimHash: String, organizationID: String, userID: String, at: Date,
        usable: @Sendable (Registration?) throws(MarketplaceLinkError) -> Registration
    ) async throws -> LinkStore.BindingRecord {
        do {
            return try await database.transaction { [logger] connection in
                let registration = try usable(
                    try await Self.registrations(
                        connection.query("\(unescaped: Self.registrationColumns) WHERE claim_hash = \(claimHash) FOR UPDATE", logger: logger)
                    ).first)
                let live = try await connection.query(
                    """
                    SELECT organization_id = \(organizationID), aws_account_id = \(registration.offer.awsAccountID)
                        AND product_code = \(registration.offer.productCode)
                    FROM link WHERE state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING')
                        AND (organization_id = \(organizationID)
                             OR (aws_account_id = \(registration.offer.awsAccountID) AND product_code = \(registration.offer.productCode)))
                    """, logger: logger
                ).collect().map { try $0.decode((Bool, Bool).self) }
                if live.contains(where: { $0.1 }) { return .accountAlreadyLinked }
                if live.contains(where: { $0.0 }) { return .organizationAlreadyLinked }
                let id = UUID().uuidString.lowercased()
                let (lifecycle, _) = LinkLifecycle.bindRequested()
                try await connection.query(
                    """
                    INSERT INTO link (id, registration_id, aws_account_id, product_code, organization_id, offer, state, linked_by, linked_at,
                                      pending_step, next_attempt_at, updated_at, trace_parent)
                    VALUES (\(id), \(registration.id), \(registration.offer.awsAccountID), \(registration.offer.productCode), \(organizationID),
                            \(registration.offer.json)::jsonb, \(lifecycle.state.rawValue), \(userID), \(at), \(lifecycle.pendingStep?.rawValue),
                            \(at), \(at), \(TraceContext.traceParent()))
                    """, logger: logger)
                try await connection.query(
                    "UPDATE registration SET claim_used_at = \(at), updated_at = \(at) WHERE id = \(registration.id)", logger: logger)
                try await PostgresBackend.notify(connection, channel: Self.linksChannel, logger: logger)
                return .recorded(linkID: id)
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw {
            // Another claim of the account, or for the organization, was bound meanwhile.
            return error.serverInfo?[.constraintName] == "link_one_per_organization" ? .organizationAlreadyLinked : .accountAlreadyLinked
        }
    }

    func dueSteps(at: Date) async throws -> [LinkStore.DueStep] {
        try await database.client.query(
            """
            SELECT id, trace_parent FROM link WHERE pending_step IS NOT NULL AND next_attempt_at <= \(at)
                AND (step_lease_until IS NULL OR step_lease_until <= \(at))
            ORDER BY next_attempt_at LIMIT 50
            """, logger: logger
        ).collect().map { row in
            let (id, trace) = try row.decode((String, String?).self)
            return LinkStore.DueStep(linkID: id, traceParent: trace)
        }
    }

    func leaseStep(linkID: String, at: Date, until: Date) async throws -> Link? {
        // One UPDATE takes the lease: of two replicas asking at once, one gets the row.
        try await Self.links(
            database.client.query(
                """
                UPDATE link SET step_lease_until = \(until)
                WHERE id = \(linkID) AND pending_step IS NOT NULL AND (step_lease_until IS NULL OR step_lease_until <= \(at))
                RETURNING \(unescaped: Self.linkColumnList)
                """, logger: logger)
        ).first
    }

    func record(_ outcome: LinkStore.Outcome, of step: LinkLifecycle.Step, linkID: String, at: Date) async throws {
        try await database.transaction { [logger] connection in
            guard
                let link = try await Self.links(connection.query("\(unescaped: Self.linkColumns) WHERE id = \(linkID) FOR UPDATE", logger: logger))
                    .first
            else { return }
            try await connection.query("UPDATE link SET step_lease_until = NULL WHERE id = \(linkID)", logger: logger)
            var lifecycle = link.lifecycle
            let (action, failureReason, nextAttemptAt) = outcome.apply(to: &lifecycle, step: step)
            guard action != .ignore else { return }
            try await connection.query(
                """
                UPDATE link SET state = \(lifecycle.state.rawValue), pending_step = \(lifecycle.pendingStep?.rawValue), attempts = attempts + 1,
                    next_attempt_at = \(nextAttemptAt), failure_reason = \(failureReason), updated_at = \(at)
                WHERE id = \(linkID)
                """, logger: logger)
            if action == .saveAndReleaseClaim {
                // Rolled back: the claim may be used again, for another organization.
                try await connection.query("UPDATE registration SET claim_used_at = NULL WHERE id = \(link.registrationID)", logger: logger)
            }
            try await PostgresBackend.notify(connection, channel: Self.linksChannel, logger: logger)
        }
    }

    // MARK: Amazon SNS messages

    func isMessageRecorded(messageID: String) async throws -> Bool {
        try await !database.client.query("SELECT 1 FROM sns_message WHERE message_id = \(messageID)", logger: logger).collect().isEmpty
    }

    func recordMessage(_ message: SNSMessage, state: NotificationStore.State, detail: String, confirmedTopic: Bool, at: Date) async throws -> Bool {
        try await database.transaction { [logger] connection in
            if confirmedTopic {
                try await connection.query(
                    """
                    INSERT INTO sns_subscription (topic_arn, confirmed_at) VALUES (\(message.topicArn), \(at))
                    ON CONFLICT (topic_arn) DO UPDATE SET confirmed_at = excluded.confirmed_at
                    """, logger: logger)
            }
            return try await Self.insert(connection, message, event: nil, state: state, detail: detail, at: at, logger: logger)
        }
    }

    func applyEvent(_ event: MarketplaceSubscriptionEvent, of message: SNSMessage, productCode: String, at: Date) async throws
        -> SubscriptionLifecycle.Effect?
    {
        try await database.transaction { [logger] connection in
            try await Self.lockCustomer(connection, event.customerIdentifier, event.productCode, logger: logger)
            guard try await Self.insert(connection, message, event: event, state: .waiting, detail: nil, at: at, logger: logger) else { return nil }
            let effect: SubscriptionLifecycle.Effect
            if event.productCode != productCode {
                effect = SubscriptionLifecycle.otherProduct(event.productCode, expected: productCode)
            } else if var registration = try await Self.registrations(
                connection.query(
                    """
                    \(unescaped: Self.registrationColumns) WHERE customer_identifier = \(event.customerIdentifier) AND product_code = \(event.productCode)
                    FOR UPDATE
                    """, logger: logger)
            ).first {
                effect = try await Self.apply(
                    connection, SubscriptionLifecycle.change(for: event.action, to: registration), to: &registration, at: at, logger: logger)
            } else {
                effect = SubscriptionLifecycle.waitingForRegistration
            }
            try await Self.setState(connection, messageID: message.messageID, effect, at: at, logger: logger)
            return effect
        }
    }

    func leaseDueRefreshes(at: Date, until: Date) async throws -> [NotificationStore.Refresh] {
        try await database.client.query(
            """
            UPDATE sns_message SET lease_until = \(until) WHERE message_id IN (
                SELECT message_id FROM sns_message
                WHERE state = 'REFRESH' AND next_attempt_at <= \(at) AND (lease_until IS NULL OR lease_until <= \(at))
                ORDER BY next_attempt_at LIMIT 50 FOR UPDATE SKIP LOCKED)
            RETURNING message_id, customer_identifier, product_code, attempts
            """, logger: logger
        ).collect().map { row in
            let (messageID, customer, product, attempts) = try row.decode((String, String, String, Int32).self)
            return NotificationStore.Refresh(messageID: messageID, customerIdentifier: customer, productCode: product, attempts: Int(attempts))
        }
    }

    func completeRefresh(_ refresh: NotificationStore.Refresh, entitlements: [Entitlement], at: Date) async throws {
        try await database.transaction { [logger] connection in
            try await Self.lockCustomer(connection, refresh.customerIdentifier, refresh.productCode, logger: logger)
            guard
                let registration = try await Self.registrations(
                    connection.query(
                        """
                        \(unescaped: Self.registrationColumns)
                        WHERE customer_identifier = \(refresh.customerIdentifier) AND product_code = \(refresh.productCode) FOR UPDATE
                        """, logger: logger)
                ).first
            else { return }
            let offer = registration.offer.withEntitlements(OfferRecord.active(entitlements, at: at))
            try await connection.query(
                "UPDATE registration SET offer = \(offer.json)::jsonb, updated_at = \(at) WHERE id = \(registration.id)", logger: logger)
            if let link = try await Self.liveLink(connection, registrationID: registration.id, logger: logger) {
                var lifecycle = link.lifecycle
                let action = lifecycle.entitlementUpdated(termsChanged: link.offer.json != offer.json)
                try await Self.save(connection, link, lifecycle, action, offer: offer, at: at, logger: logger)
            }
            try await Self.setState(
                connection, messageID: refresh.messageID,
                SubscriptionLifecycle.Effect(state: .applied, detail: "entitlements: \(offer.entitlements.sorted { $0.key < $1.key })"), at: at,
                logger: logger)
        }
    }

    func postponeRefresh(messageID: String, until: Date, error: String) async throws {
        try await database.client.query(
            """
            UPDATE sns_message SET attempts = attempts + 1, next_attempt_at = \(until), detail = \("retrying: \(error)"), lease_until = NULL
            WHERE message_id = \(messageID)
            """, logger: logger)
    }

    // MARK: Subscription lifecycle, inside the caller's transaction

    /// Carries out what `SubscriptionLifecycle` decided for an event.
    private static func apply(
        _ connection: PostgresConnection, _ change: SubscriptionLifecycle.Change, to registration: inout Registration, at: Date, logger: Logger
    ) async throws -> SubscriptionLifecycle.Effect {
        switch change {
        case .record(let state, let detail):
            return SubscriptionLifecycle.Effect(state: state, detail: detail)
        case .close(let reason):
            try await connection.query(
                "UPDATE registration SET closed_reason = \(reason), closed_at = \(at), updated_at = \(at) WHERE id = \(registration.id)",
                logger: logger)
            registration.closedReason = reason
            guard let link = try await liveLink(connection, registrationID: registration.id, logger: logger) else {
                return SubscriptionLifecycle.closed(linkID: nil)
            }
            var lifecycle = link.lifecycle
            let action = lifecycle.subscriptionEnded()
            try await save(connection, link, lifecycle, action, at: at, logger: logger)
            return SubscriptionLifecycle.closed(linkID: link.id)
        case .markUnsubscribePending:
            guard let link = try await liveLink(connection, registrationID: registration.id, logger: logger) else {
                return SubscriptionLifecycle.marked(false)
            }
            var lifecycle = link.lifecycle
            let action = lifecycle.unsubscribePending()
            try await save(connection, link, lifecycle, action, at: at, logger: logger)
            return SubscriptionLifecycle.marked(action != .ignore)
        }
    }

    /// The registration's live link, locked for the rest of the transaction.
    private static func liveLink(_ connection: PostgresConnection, registrationID: String, logger: Logger) async throws -> Link? {
        try await links(
            connection.query(
                "\(unescaped: linkColumns) WHERE registration_id = \(registrationID) AND state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING') FOR UPDATE",
                logger: logger)
        ).first
    }

    /// Stores a lifecycle event's new state; a step owed anew starts over (attempts from 0).
    private static func save(
        _ connection: PostgresConnection, _ link: Link, _ lifecycle: LinkLifecycle, _ action: LinkLifecycle.Action, offer: OfferRecord? = nil,
        at: Date, logger: Logger
    ) async throws {
        switch action {
        case .ignore:
            return
        case .owe(_, let startNow):
            try await connection.query(
                """
                UPDATE link SET state = \(lifecycle.state.rawValue), pending_step = \(lifecycle.pendingStep?.rawValue), attempts = 0,
                    next_attempt_at = CASE WHEN \(startNow) THEN \(at) ELSE next_attempt_at END,
                    offer = COALESCE(\(offer?.json)::jsonb, offer), updated_at = \(at), trace_parent = \(TraceContext.traceParent())
                WHERE id = \(link.id)
                """, logger: logger)
        case .save, .saveAndReleaseClaim, .retryLater:
            try await connection.query(
                """
                UPDATE link SET state = \(lifecycle.state.rawValue), pending_step = \(lifecycle.pendingStep?.rawValue),
                    offer = COALESCE(\(offer?.json)::jsonb, offer), updated_at = \(at)
                WHERE id = \(link.id)
                """, logger: logger)
        }
        if !lifecycle.takesUsage { try await closeOpenHours(connection, linkID: link.id, at: at, logger: logger) }
        try await PostgresBackend.notify(connection, channel: linksChannel, logger: logger)
    }

    // MARK: Locks, queries and rows

    /// Serialises a customer's events and registrations for the rest of the transaction.
    private static func lockCustomer(_ connection: PostgresConnection, _ customer: String, _ product: String, logger: Logger) async throws {
        try await connection.query(
            "SELECT pg_advisory_xact_lock(hashtextextended(\("marketplace-customer:\(product):\(customer)"), 0))", logger: logger)
    }

    /// Records a message; false if its MessageId was taken already.
    private static func insert(
        _ connection: PostgresConnection, _ message: SNSMessage, event: MarketplaceSubscriptionEvent?, state: NotificationStore.State,
        detail: String?, at: Date, logger: Logger
    ) async throws -> Bool {
        try await !connection.query(
            """
            INSERT INTO sns_message (message_id, type, topic_arn, sent_at, received_at, action, customer_identifier, product_code,
                                     offer_identifier, state, detail)
            VALUES (\(message.messageID), \(message.kind.rawValue), \(message.topicArn), \(message.timestamp), \(at), \(event?.action.rawValue),
                    \(event?.customerIdentifier), \(event?.productCode), \(event?.offerIdentifier), \(state.rawValue), \(detail))
            ON CONFLICT (message_id) DO NOTHING
            RETURNING 1
            """, logger: logger
        ).collect().isEmpty
    }

    private static func setState(
        _ connection: PostgresConnection, messageID: String, _ effect: SubscriptionLifecycle.Effect, at: Date, logger: Logger
    ) async throws {
        let nextAttemptAt: Date? = effect.state == .refresh ? at : nil
        try await connection.query(
            """
            UPDATE sns_message SET state = \(effect.state.rawValue), detail = \(effect.detail), next_attempt_at = \(nextAttemptAt), lease_until = NULL
            WHERE message_id = \(messageID)
            """, logger: logger)
    }

    private static let registrationColumns =
        "SELECT id, customer_identifier, offer::text, claim_expires_at, claim_used_at, closed_reason FROM registration"

    private static func registrations(_ rows: PostgresRowSequence) async throws -> [Registration] {
        try await rows.collect().map { row in
            let (id, customer, offer, expiresAt, usedAt, closedReason) = try row.decode((String, String, String, Date, Date?, String?).self)
            return Registration(
                id: id, customerIdentifier: customer, offer: try JSONDecoder().decode(OfferRecord.self, from: Data(offer.utf8)),
                claimExpiresAt: expiresAt, claimUsedAt: usedAt, closedReason: closedReason)
        }
    }

    private static let linkColumnList =
        "id, registration_id, organization_id, offer::text, state, linked_by, linked_at, failure_reason, attempts, pending_step"
    private static let linkColumns = "SELECT \(linkColumnList) FROM link"

    private static func links(_ rows: PostgresRowSequence) async throws -> [Link] {
        try await rows.collect().map { row in
            let (id, registrationID, organizationID, offer, state, linkedBy, linkedAt, failureReason, attempts, pendingStep) = try row.decode(
                (String, String, String, String, String, String, Date, String?, Int32, String?).self)
            guard let state = LinkState(rawValue: state) else { throw PostgresStorageError("unknown link state '\(state)'") }
            return Link(
                id: id, registrationID: registrationID, organizationID: organizationID,
                offer: try JSONDecoder().decode(OfferRecord.self, from: Data(offer.utf8)), state: state, linkedBy: linkedBy, linkedAt: linkedAt,
                failureReason: failureReason, attempts: Int(attempts), pendingStep: pendingStep.flatMap(LinkLifecycle.Step.init(rawValue:)))
        }
    }
}
