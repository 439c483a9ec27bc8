import GRDB

/// marketplace-link's schema. The partial unique indexes are the rules "one AWS account <-> one
/// committed-contract offer <-> one organization" and "at most one marketplace contract per
/// organization", enforced by the database for every live link.
enum MarketplaceLinkMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("marketplace-link v1: registrations and links") { db in
            try db.execute(
                sql: """
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
        migrator.registerMigration("marketplace-link v2: subscription lifecycle from Amazon SNS") { db in
            try db.execute(
                sql: """
                    -- subscribe-fail or unsubscribe-success ends a registration: its claim can no longer be used.
                    ALTER TABLE registration ADD COLUMN closed_reason TEXT;
                    ALTER TABLE registration ADD COLUMN closed_at REAL;
                    CREATE INDEX registration_customer ON registration(customer_identifier, product_code);

                    -- The saga step a link still owes organization, retried until it answers: SET_BILLING after a
                    -- bind, CLEAR_BILLING after a cancellation. Separate from the state the billing page shows.
                    ALTER TABLE link ADD COLUMN pending_step TEXT CHECK (pending_step IN ('SET_BILLING', 'CLEAR_BILLING'));
                    UPDATE link SET pending_step = 'SET_BILLING' WHERE state = 'BINDING';
                    DROP INDEX link_due;
                    CREATE INDEX link_due ON link(next_attempt_at) WHERE pending_step IS NOT NULL;

                    -- Every SNS message taken, by MessageId (duplicates are recognised here). WAITING: no
                    -- registration for its customer yet; REFRESH: entitlements to fetch from AWS.
                    CREATE TABLE sns_message (
                        message_id TEXT PRIMARY KEY,
                        type TEXT NOT NULL,
                        topic_arn TEXT NOT NULL,
                        sent_at REAL NOT NULL,
                        received_at REAL NOT NULL,
                        action TEXT,
                        customer_identifier TEXT,
                        product_code TEXT,
                        offer_identifier TEXT,
                        state TEXT NOT NULL CHECK (state IN ('APPLIED', 'WAITING', 'REFRESH', 'IGNORED')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at REAL,
                        detail TEXT
                    );
                    CREATE INDEX sns_message_waiting ON sns_message(customer_identifier, product_code, sent_at) WHERE state = 'WAITING';
                    CREATE INDEX sns_message_refresh ON sns_message(next_attempt_at) WHERE state = 'REFRESH';

                    -- Topics whose SubscriptionConfirmation we confirmed.
                    CREATE TABLE sns_subscription (
                        topic_arn TEXT PRIMARY KEY,
                        confirmed_at REAL NOT NULL
                    );
                    """)
        }
        // Leases: a saga step or an entitlement refresh is worked by one worker (one replica) at a
        // time; one that dies leaves it to another when its lease runs out.
        migrator.registerMigration("marketplace-link v3: leases on background work") { db in
            try db.execute(
                sql: """
                    ALTER TABLE link ADD COLUMN step_lease_until REAL;
                    ALTER TABLE sns_message ADD COLUMN lease_until REAL;
                    """)
        }
        migrator.registerMigration("marketplace-link v4: usage metering") { db in
            try db.execute(sql: UsageStore.sqliteSchema)
        }
        // The trace of the call that made a link owe a step, or opened a usage hour, so the
        // background work's spans link back to it.
        migrator.registerMigration("marketplace-link v5: background work remembers its trace") { db in
            try db.execute(
                sql: """
                    ALTER TABLE link ADD COLUMN trace_parent TEXT;
                    ALTER TABLE usage_hour ADD COLUMN trace_parent TEXT;
                    """)
        }
        return migrator
    }
}
