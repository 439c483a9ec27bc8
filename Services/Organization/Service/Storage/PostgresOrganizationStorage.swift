import Contracts
import Foundation
import Logging
import PostgresNIO
import ServiceRuntime

/// organization's storage in PostgreSQL, shared by any number of replicas. Transactions run at
/// READ COMMITTED; each write first locks what its rule reads, so two replicas cannot both pass a
/// check that only one of them may:
/// - every write to an organization's members, invitations, selection or billing locks its
///   `organization` row (`FOR UPDATE`; selecting takes `FOR SHARE`): the last-admin rule counts
///   admins no concurrent demotion or removal can change before it commits;
/// - joining (creating, accepting) takes a transaction advisory lock on the user, so the
///   25-organization limit counts memberships nobody else is adding, and a retried creation finds
///   the first one's idempotency key;
/// - setting billing also locks the link id, so a link bills one organization (the UNIQUE
///   `link_id` stays as the backstop).
/// Locks are always taken user, then organization, then link, so these cannot deadlock one
/// another (and `PostgresBackend.transaction` retries if PostgreSQL ever finds one).
struct PostgresOrganizationStorage: OrganizationStorage {
    let database: PostgresBackend
    /// The channel a membership change is announced on; every replica's role cache listens.
    static let rolesChannel = "organization_roles"

    private var logger: Logger { database.logger }

    static let migrations = [
        PostgresMigration(
            "organization v1: organizations, memberships, selection, idempotency, billing, audit, invitations",
            [
                """
                CREATE TABLE organization (
                    id text PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL, created_by text NOT NULL)
                """,
                """
                CREATE TABLE membership (
                    organization_id text NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
                    user_id text NOT NULL,
                    role text NOT NULL CHECK (role IN ('ADMIN', 'DEVELOPER', 'BILLING', 'MEMBER')),
                    added_at timestamptz NOT NULL,
                    PRIMARY KEY (organization_id, user_id))
                """,
                "CREATE INDEX membership_by_user ON membership (user_id)",
                """
                CREATE TABLE selected_organization (
                    user_id text PRIMARY KEY, organization_id text NOT NULL REFERENCES organization(id) ON DELETE CASCADE)
                """,
                // A retried CreateOrganization with the same key returns the first organization.
                """
                CREATE TABLE create_idempotency (
                    user_id text NOT NULL, idempotency_key text NOT NULL,
                    organization_id text NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
                    created_at timestamptz NOT NULL, PRIMARY KEY (user_id, idempotency_key))
                """,
                // One row per organization billed other than by default; a link binds at most one organization.
                """
                CREATE TABLE billing_account (
                    organization_id text PRIMARY KEY REFERENCES organization(id) ON DELETE CASCADE,
                    provider text NOT NULL CHECK (provider IN ('AWS_MARKETPLACE')),
                    aws_account_id text NOT NULL, link_id text NOT NULL UNIQUE, contract jsonb NOT NULL, updated_at timestamptz NOT NULL)
                """,
                """
                CREATE TABLE audit_event (
                    id bigserial PRIMARY KEY, organization_id text NOT NULL, at timestamptz NOT NULL, action text NOT NULL,
                    actor text NOT NULL, subject_user_id text, detail text)
                """,
                "CREATE INDEX audit_event_by_organization ON audit_event (organization_id, id)",
                // Nobody is made a member without consent: AddMember makes an invitation, accepted by the invitee.
                """
                CREATE TABLE invitation (
                    organization_id text NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
                    user_id text NOT NULL,
                    role text NOT NULL CHECK (role IN ('ADMIN', 'DEVELOPER', 'BILLING', 'MEMBER')),
                    invited_by text NOT NULL, invited_at timestamptz NOT NULL,
                    PRIMARY KEY (organization_id, user_id))
                """,
                "CREATE INDEX invitation_by_user ON invitation (user_id)"
            ])
    ]

    // MARK: Reads

    func views(userID: String) async throws -> [MembershipRecord] {
        try await Self.views(database.client.query(Self.viewsQuery(userID: userID, organizationID: nil), logger: logger))
    }

    func view(organizationID: String, userID: String) async throws -> MembershipRecord? {
        try await Self.views(database.client.query(Self.viewsQuery(userID: userID, organizationID: organizationID), logger: logger)).first
    }

    func selectedView(userID: String) async throws -> MembershipRecord? {
        try await Self.views(
            database.client.query(
                """
                SELECT o.id, o.name, o.created_at, m.role FROM selected_organization s
                JOIN organization o ON o.id = s.organization_id JOIN membership m ON m.organization_id = o.id AND m.user_id = s.user_id
                WHERE s.user_id = \(userID)
                """, logger: logger)
        ).first
    }

    func invitations(userID: String) async throws -> [InvitationRecord] {
        try await Self.invitations(database.client.query(Self.invitationsQuery(userID: userID, organizationID: nil), logger: logger))
    }

    func members(organizationID: String) async throws -> [MemberRecord] {
        try await Self.members(
            database.client.query(
                "SELECT user_id, role, added_at FROM membership WHERE organization_id = \(organizationID) ORDER BY added_at, user_id",
                logger: logger))
    }

    func role(organizationID: String, userID: String) async throws -> Role? {
        try await Self.role(database.client.query(Self.roleQuery(organizationID: organizationID, userID: userID), logger: logger))
    }

    func billing(organizationID: String) async throws -> BillingRecord {
        try await Self.billing(database.client.query(Self.billingQuery(organizationID), logger: logger), organizationID: organizationID)
    }

    func auditEvents(organizationID: String, limit: Int) async throws -> [AuditRecord] {
        var events: [AuditRecord] = []
        let rows = try await database.client.query(
            """
            SELECT action, actor, subject_user_id, detail, at FROM audit_event WHERE organization_id = \(organizationID)
            ORDER BY id DESC LIMIT \(limit)
            """, logger: logger)
        for row in try await rows.collect() {
            let (action, actor, subject, detail, at) = try row.decode((String, String, String?, String?, Date).self)
            events.append(AuditRecord(action: action, actor: actor, subjectUserID: subject, detail: detail, at: at))
        }
        return events
    }

    // MARK: Writes

    func createOrganization(
        id: String, name: String, userID: String, idempotencyKey: String?, at: Date,
        check: @Sendable (Int) throws(OrganizationError) -> Void
    ) async throws -> MembershipRecord {
        try await database.transaction { [logger] connection in
            try await Self.lockUser(connection, userID, logger: logger)
            if let idempotencyKey {
                let existing = try await connection.query(
                    "SELECT organization_id FROM create_idempotency WHERE user_id = \(userID) AND idempotency_key = \(idempotencyKey)",
                    logger: logger)
                for row in try await existing.collect() {
                    let (organizationID) = try row.decode(String.self)
                    guard
                        let view = try await Self.views(
                            connection.query(Self.viewsQuery(userID: userID, organizationID: organizationID), logger: logger)
                        ).first
                    else { throw OrganizationError.notFound }
                    return view
                }
            }
            try check(try await Self.membershipCount(connection, userID: userID, logger: logger))
            try await connection.query(
                "INSERT INTO organization (id, name, created_at, created_by) VALUES (\(id), \(name), \(at), \(userID))", logger: logger)
            try await connection.query(
                "INSERT INTO membership (organization_id, user_id, role, added_at) VALUES (\(id), \(userID), 'ADMIN', \(at))", logger: logger)
            if let idempotencyKey {
                try await connection.query(
                    """
                    INSERT INTO create_idempotency (user_id, idempotency_key, organization_id, created_at)
                    VALUES (\(userID), \(idempotencyKey), \(id), \(at))
                    """, logger: logger)
            }
            try await Self.audit(connection, id, "organization_created", actor: userID, detail: name, at: at, logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.rolesChannel, logger: logger)
            guard
                let view = try await Self.views(connection.query(Self.viewsQuery(userID: userID, organizationID: id), logger: logger)).first
            else { throw OrganizationError.notFound }
            return view
        }
    }

    func invite(
        organizationID: String, userID: String, role: Role, actor: String, at: Date,
        check: @Sendable (Role?, Role?) throws(OrganizationError) -> Void
    ) async throws -> InvitationRecord {
        try await database.transaction { [logger] connection in
            try await Self.lockOrganization(connection, organizationID, logger: logger)
            try check(
                try await Self.role(connection.query(Self.roleQuery(organizationID: organizationID, userID: actor), logger: logger)),
                try await Self.role(connection.query(Self.roleQuery(organizationID: organizationID, userID: userID), logger: logger)))
            try await connection.query(
                """
                INSERT INTO invitation (organization_id, user_id, role, invited_by, invited_at)
                VALUES (\(organizationID), \(userID), \(role.rawValue), \(actor), \(at))
                ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role, invited_by = excluded.invited_by,
                    invited_at = excluded.invited_at
                """, logger: logger)
            try await Self.audit(
                connection, organizationID, "member_invited", actor: actor, subject: userID, detail: role.rawValue, at: at, logger: logger)
            guard
                let invitation = try await Self.invitations(
                    connection.query(Self.invitationsQuery(userID: userID, organizationID: organizationID), logger: logger)
                ).first
            else { throw OrganizationError.notFound }
            return invitation
        }
    }

    func acceptInvitation(
        organizationID: String, userID: String, at: Date,
        check: @Sendable (InvitationRecord?, Int) throws(OrganizationError) -> Void
    ) async throws -> MembershipRecord {
        try await database.transaction { [logger] connection in
            try await Self.lockUser(connection, userID, logger: logger)
            try await Self.lockOrganization(connection, organizationID, logger: logger)
            let invitation = try await Self.invitations(
                connection.query(Self.invitationsQuery(userID: userID, organizationID: organizationID), logger: logger)
            ).first
            // Accepted already: a retry whose first answer was lost gets the same answer.
            if invitation == nil,
                let member = try await Self.views(connection.query(Self.viewsQuery(userID: userID, organizationID: organizationID), logger: logger))
                    .first
            {
                return member
            }
            try check(invitation, try await Self.membershipCount(connection, userID: userID, logger: logger))
            guard let invitation else { throw OrganizationError.noInvitation }
            try await connection.query(
                """
                INSERT INTO membership (organization_id, user_id, role, added_at) VALUES (\(organizationID), \(userID), \(invitation.role.rawValue), \(at))
                """, logger: logger)
            try await connection.query("DELETE FROM invitation WHERE organization_id = \(organizationID) AND user_id = \(userID)", logger: logger)
            try await Self.audit(
                connection, organizationID, "member_added", actor: userID, subject: userID,
                detail: "\(invitation.role.rawValue), invited by \(invitation.invitedBy)", at: at, logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.rolesChannel, logger: logger)
            guard
                let view = try await Self.views(connection.query(Self.viewsQuery(userID: userID, organizationID: organizationID), logger: logger))
                    .first
            else { throw OrganizationError.notFound }
            return view
        }
    }

    func declineInvitation(organizationID: String, userID: String, at: Date) async throws -> InvitationRecord? {
        try await database.transaction { [logger] connection in
            try await Self.lockOrganization(connection, organizationID, logger: logger)
            guard
                let invitation = try await Self.invitations(
                    connection.query(Self.invitationsQuery(userID: userID, organizationID: organizationID), logger: logger)
                ).first
            else { return nil }
            try await connection.query("DELETE FROM invitation WHERE organization_id = \(organizationID) AND user_id = \(userID)", logger: logger)
            try await Self.audit(connection, organizationID, "invitation_declined", actor: userID, subject: userID, at: at, logger: logger)
            return invitation
        }
    }

    func changeRole(
        organizationID: String, userID: String, to role: Role, actor: String, at: Date,
        check: @Sendable (Role?, MemberRecord?, Int) throws(OrganizationError) -> Bool
    ) async throws -> MemberRecord {
        try await database.transaction { [logger] connection in
            try await Self.lockOrganization(connection, organizationID, logger: logger)
            let member = try await Self.members(
                connection.query(
                    "SELECT user_id, role, added_at FROM membership WHERE organization_id = \(organizationID) AND user_id = \(userID)",
                    logger: logger)
            ).first
            let changes = try check(
                try await Self.role(connection.query(Self.roleQuery(organizationID: organizationID, userID: actor), logger: logger)), member,
                try await Self.adminCount(connection, organizationID, logger: logger))
            guard let member else { throw OrganizationError.notMember }
            guard changes else { return member }
            try await connection.query(
                "UPDATE membership SET role = \(role.rawValue) WHERE organization_id = \(organizationID) AND user_id = \(userID)", logger: logger)
            try await Self.audit(
                connection, organizationID, "role_changed", actor: actor, subject: userID, detail: "\(member.role.rawValue) -> \(role.rawValue)",
                at: at, logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.rolesChannel, logger: logger)
            return MemberRecord(userID: userID, role: role, addedAt: member.addedAt)
        }
    }

    func endMembership(
        organizationID: String, userID: String, actor: String, action: String, at: Date,
        check: @Sendable (Role?, Role?, Int) throws(OrganizationError) -> Void
    ) async throws {
        try await database.transaction { [logger] connection in
            try await Self.lockOrganization(connection, organizationID, logger: logger)
            let memberRole = try await Self.role(connection.query(Self.roleQuery(organizationID: organizationID, userID: userID), logger: logger))
            try check(
                try await Self.role(connection.query(Self.roleQuery(organizationID: organizationID, userID: actor), logger: logger)), memberRole,
                try await Self.adminCount(connection, organizationID, logger: logger))
            try await connection.query("DELETE FROM membership WHERE organization_id = \(organizationID) AND user_id = \(userID)", logger: logger)
            try await connection.query(
                "DELETE FROM selected_organization WHERE user_id = \(userID) AND organization_id = \(organizationID)", logger: logger)
            try await Self.audit(
                connection, organizationID, action, actor: actor, subject: userID, detail: memberRole?.rawValue, at: at, logger: logger)
            try await PostgresBackend.notify(connection, channel: Self.rolesChannel, logger: logger)
        }
    }

    func select(organizationID: String, userID: String) async throws -> MembershipRecord? {
        try await database.transaction { [logger] connection in
            // FOR SHARE: a membership ending meanwhile (FOR UPDATE) waits, so no selection outlives it.
            try await connection.query("SELECT 1 FROM organization WHERE id = \(organizationID) FOR SHARE", logger: logger)
            guard
                let view = try await Self.views(connection.query(Self.viewsQuery(userID: userID, organizationID: organizationID), logger: logger))
                    .first
            else { return nil }
            try await connection.query(
                """
                INSERT INTO selected_organization (user_id, organization_id) VALUES (\(userID), \(organizationID))
                ON CONFLICT (user_id) DO UPDATE SET organization_id = excluded.organization_id
                """, logger: logger)
            return view
        }
    }

    func setBilling(
        organizationID: String, awsAccountID: String, linkID: String, contract: ContractSummary, linkedBy: String?, service: String, at: Date,
        check: @Sendable (Bool, BillingRecord, Bool) throws(OrganizationError) -> OrganizationRules.BillingChange
    ) async throws -> BillingRecord {
        let contractJSON = String(decoding: try JSONEncoder().encode(contract), as: UTF8.self)
        return try await database.transaction { [logger] connection in
            let exists = try await Self.lockOrganization(connection, organizationID, logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\("billing-link:" + linkID), 0))", logger: logger)
            let current = try await Self.billing(connection.query(Self.billingQuery(organizationID), logger: logger), organizationID: organizationID)
            let billsAnother = try await !connection.query("SELECT 1 FROM billing_account WHERE link_id = \(linkID)", logger: logger).collect()
                .isEmpty
            switch try check(exists, current, billsAnother) {
            case .none:
                return current
            case .replaceContract:
                try await connection.query(
                    "UPDATE billing_account SET contract = \(contractJSON)::jsonb, updated_at = \(at) WHERE organization_id = \(organizationID)",
                    logger: logger)
                try await Self.audit(
                    connection, organizationID, "billing_updated", actor: "service:\(service)",
                    detail: "AWS_MARKETPLACE link \(linkID): contract changed", at: at, logger: logger)
            case .set:
                try await connection.query(
                    """
                    INSERT INTO billing_account (organization_id, provider, aws_account_id, link_id, contract, updated_at)
                    VALUES (\(organizationID), 'AWS_MARKETPLACE', \(awsAccountID), \(linkID), \(contractJSON)::jsonb, \(at))
                    """, logger: logger)
                try await Self.audit(
                    connection, organizationID, "billing_set", actor: "service:\(service)", subject: linkedBy,
                    detail: "AWS_MARKETPLACE link \(linkID)", at: at, logger: logger)
            }
            return try await Self.billing(connection.query(Self.billingQuery(organizationID), logger: logger), organizationID: organizationID)
        }
    }

    func clearBilling(
        organizationID: String, linkID: String, reason: String, service: String, at: Date,
        check: @Sendable (Bool, BillingRecord) throws(OrganizationError) -> Bool
    ) async throws -> BillingRecord {
        try await database.transaction { [logger] connection in
            let exists = try await Self.lockOrganization(connection, organizationID, logger: logger)
            let current = try await Self.billing(connection.query(Self.billingQuery(organizationID), logger: logger), organizationID: organizationID)
            guard try check(exists, current) else { return current }
            try await connection.query("DELETE FROM billing_account WHERE organization_id = \(organizationID)", logger: logger)
            try await Self.audit(
                connection, organizationID, "billing_cleared", actor: "service:\(service)", detail: "link \(linkID): \(reason)", at: at,
                logger: logger)
            return try await Self.billing(connection.query(Self.billingQuery(organizationID), logger: logger), organizationID: organizationID)
        }
    }

    // MARK: Locks, queries and rows

    /// Locks the organization's row for the rest of the transaction; false when there is no such organization.
    @discardableResult
    private static func lockOrganization(_ connection: PostgresConnection, _ organizationID: String, logger: Logger) async throws -> Bool {
        // Every row read whole before the next query: a connection runs one query at a time.
        try await !connection.query("SELECT 1 FROM organization WHERE id = \(organizationID) FOR UPDATE", logger: logger).collect().isEmpty
    }

    /// Serialises the transactions that add memberships to one user, for the rest of this one.
    private static func lockUser(_ connection: PostgresConnection, _ userID: String, logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\("organization-member:" + userID), 0))", logger: logger)
    }

    private static func membershipCount(_ connection: PostgresConnection, userID: String, logger: Logger) async throws -> Int {
        try await count(connection.query("SELECT count(*) FROM membership WHERE user_id = \(userID)", logger: logger))
    }

    private static func adminCount(_ connection: PostgresConnection, _ organizationID: String, logger: Logger) async throws -> Int {
        try await count(
            connection.query("SELECT count(*) FROM membership WHERE organization_id = \(organizationID) AND role = 'ADMIN'", logger: logger))
    }

    private static func count(_ rows: PostgresRowSequence) async throws -> Int {
        try await rows.collect().first.map { Int(try $0.decode(Int64.self)) } ?? 0
    }

    private static func audit(
        _ connection: PostgresConnection, _ organizationID: String, _ action: String, actor: String, subject: String? = nil,
        detail: String? = nil, at: Date, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO audit_event (organization_id, at, action, actor, subject_user_id, detail)
            VALUES (\(organizationID), \(at), \(action), \(actor), \(subject), \(detail))
            """, logger: logger)
    }

    private static func viewsQuery(userID: String, organizationID: String?) -> PostgresQuery {
        """
        SELECT o.id, o.name, o.created_at, m.role FROM organization o JOIN membership m ON m.organization_id = o.id
        WHERE m.user_id = \(userID) AND (\(organizationID)::text IS NULL OR o.id = \(organizationID)) ORDER BY o.name, o.id
        """
    }

    private static func views(_ rows: PostgresRowSequence) async throws -> [MembershipRecord] {
        var views: [MembershipRecord] = []
        for row in try await rows.collect() {
            let (id, name, createdAt, role) = try row.decode((String, String, Date, String).self)
            views.append(MembershipRecord(id: id, name: name, createdAt: createdAt, role: try stored(role)))
        }
        return views
    }

    private static func invitationsQuery(userID: String, organizationID: String?) -> PostgresQuery {
        """
        SELECT i.organization_id, o.name, i.user_id, i.role, i.invited_by, i.invited_at
        FROM invitation i JOIN organization o ON o.id = i.organization_id
        WHERE i.user_id = \(userID) AND (\(organizationID)::text IS NULL OR i.organization_id = \(organizationID)) ORDER BY i.invited_at DESC
        """
    }

    private static func invitations(_ rows: PostgresRowSequence) async throws -> [InvitationRecord] {
        var invitations: [InvitationRecord] = []
        for row in try await rows.collect() {
            let (organizationID, name, userID, role, invitedBy, invitedAt) = try row.decode((String, String, String, String, String, Date).self)
            invitations.append(
                InvitationRecord(
                    organizationID: organizationID, organizationName: name, userID: userID, role: try stored(role), invitedBy: invitedBy,
                    invitedAt: invitedAt))
        }
        return invitations
    }

    private static func members(_ rows: PostgresRowSequence) async throws -> [MemberRecord] {
        var members: [MemberRecord] = []
        for row in try await rows.collect() {
            let (userID, role, addedAt) = try row.decode((String, String, Date).self)
            members.append(MemberRecord(userID: userID, role: try stored(role), addedAt: addedAt))
        }
        return members
    }

    private static func roleQuery(organizationID: String, userID: String) -> PostgresQuery {
        "SELECT role FROM membership WHERE organization_id = \(organizationID) AND user_id = \(userID)"
    }

    private static func role(_ rows: PostgresRowSequence) async throws -> Role? {
        try await rows.collect().first.map { try stored(try $0.decode(String.self)) }
    }

    private static func billingQuery(_ organizationID: String) -> PostgresQuery {
        "SELECT aws_account_id, link_id, contract::text, updated_at FROM billing_account WHERE organization_id = \(organizationID)"
    }

    private static func billing(_ rows: PostgresRowSequence, organizationID: String) async throws -> BillingRecord {
        for row in try await rows.collect() {
            let (account, linkID, contract, updatedAt) = try row.decode((String, String, String, Date).self)
            return BillingRecord(
                organizationId: organizationID, provider: .awsMarketplace, awsAccountId: account, linkId: linkID,
                contract: try? JSONDecoder().decode(ContractSummary.self, from: Data(contract.utf8)), updatedAt: updatedAt)
        }
        return BillingRecord(organizationId: organizationID, provider: .none)
    }

    /// A role column's value (the CHECK constraint allows only the four).
    private static func stored(_ role: String) throws -> Role {
        guard let value = Role(rawValue: role) else { throw PostgresStorageError("unknown role '\(role)' in the database") }
        return value
    }
}
