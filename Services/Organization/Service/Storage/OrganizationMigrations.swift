import GRDB

/// organization's schema, one migration per change. Times are seconds since 1970 (REAL).
enum OrganizationMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("organization v1: organizations, memberships, selection, idempotency, billing, audit") { db in
            try db.execute(
                sql: """
                    CREATE TABLE organization (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        created_by TEXT NOT NULL
                    );
                    CREATE TABLE membership (
                        organization_id TEXT NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
                        user_id TEXT NOT NULL,
                        role TEXT NOT NULL CHECK (role IN ('ADMIN', 'DEVELOPER', 'BILLING', 'MEMBER')),
                        added_at REAL NOT NULL,
                        PRIMARY KEY (organization_id, user_id)
                    );
                    CREATE INDEX membership_by_user ON membership(user_id);
                    CREATE TABLE selected_organization (
                        user_id TEXT PRIMARY KEY,
                        organization_id TEXT NOT NULL REFERENCES organization(id) ON DELETE CASCADE
                    );
                    -- A retried CreateOrganization with the same key returns the first organization.
                    CREATE TABLE create_idempotency (
                        user_id TEXT NOT NULL,
                        idempotency_key TEXT NOT NULL,
                        organization_id TEXT NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (user_id, idempotency_key)
                    );
                    -- One row per organization billed other than by default; a link binds at most one organization.
                    CREATE TABLE billing_account (
                        organization_id TEXT PRIMARY KEY REFERENCES organization(id) ON DELETE CASCADE,
                        provider TEXT NOT NULL CHECK (provider IN ('AWS_MARKETPLACE')),
                        aws_account_id TEXT NOT NULL,
                        link_id TEXT NOT NULL UNIQUE,
                        contract TEXT NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE audit_event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        organization_id TEXT NOT NULL,
                        at REAL NOT NULL,
                        action TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        subject_user_id TEXT,
                        detail TEXT
                    );
                    CREATE INDEX audit_event_by_organization ON audit_event(organization_id, id);
                    """)
        }
        // Nobody is made a member without consent: AddMember makes an invitation, accepted by the invitee.
        migrator.registerMigration("organization v2: invitations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE invitation (
                        organization_id TEXT NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
                        user_id TEXT NOT NULL,
                        role TEXT NOT NULL CHECK (role IN ('ADMIN', 'DEVELOPER', 'BILLING', 'MEMBER')),
                        invited_by TEXT NOT NULL,
                        invited_at REAL NOT NULL,
                        PRIMARY KEY (organization_id, user_id)
                    );
                    CREATE INDEX invitation_by_user ON invitation(user_id);
                    """)
        }
        return migrator
    }
}
