import GRDB

/// marketplace-link's schema. The partial unique indexes are the rules "one AWS account <-> one
/// committed-contract offer <-> one organization" and "at most one marketplace contract per
/// organization", enforced by the database for every live link.
enum MarketplaceLinkMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("marketplace-link v1: registrations and links") { db in
            try db.execute(sql: """
                -- A resolved registration, pending until bound. The registration token itself is never stored.
                CREATE TABLE registration (
                    id TEXT PRIMARY KEY,
                    aws_account_id TEXT NOT NULL,
                    customer_identifier TEXT NOT NULL,
                    product_code TEXT NOT NULL,
                    offer TEXT NOT NULL,
                    claim_hash TEXT NOT NULL UNIQUE,
                    claim_expires_at REAL NOT NULL,
                    claim_used_at REAL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    UNIQUE (aws_account_id, product_code)
                );
                CREATE TABLE link (
                    id TEXT PRIMARY KEY,
                    registration_id TEXT NOT NULL REFERENCES registration(id),
                    aws_account_id TEXT NOT NULL,
                    product_code TEXT NOT NULL,
                    organization_id TEXT NOT NULL,
                    offer TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING', 'CANCELLED', 'FAILED')),
                    linked_by TEXT NOT NULL,
                    linked_at REAL NOT NULL,
                    failure_reason TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at REAL,
                    updated_at REAL NOT NULL
                );
                CREATE UNIQUE INDEX link_one_per_account ON link(aws_account_id, product_code)
                    WHERE state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING');
                CREATE UNIQUE INDEX link_one_per_organization ON link(organization_id)
                    WHERE state IN ('BINDING', 'ACTIVE', 'UNSUBSCRIBE_PENDING');
                CREATE INDEX link_due ON link(next_attempt_at) WHERE state = 'BINDING';
                """)
        }
        return migrator
    }
}
