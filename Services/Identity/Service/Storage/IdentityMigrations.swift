import GRDB

/// Identity's schema, one migration per change. Times are seconds since 1970 (REAL), so the rules
/// compare them as numbers.
enum IdentityMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("identity v1: users, tokens, sessions, keys, throttling, outbox, audit") { db in
            try db.execute(
                sql: """
                    CREATE TABLE user (
                        id TEXT PRIMARY KEY,
                        email TEXT NOT NULL UNIQUE,
                        full_name TEXT NOT NULL,
                        password_hash TEXT NOT NULL,
                        email_verified_at REAL,
                        company_name TEXT,
                        company_size TEXT,
                        country TEXT,
                        job_title TEXT,
                        use_case TEXT,
                        created_at REAL NOT NULL,
                        password_changed_at REAL NOT NULL
                    );
                    -- Email links: only the SHA-256 of the token is kept.
                    CREATE TABLE one_time_token (
                        token_hash TEXT PRIMARY KEY,
                        purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
                        user_id TEXT NOT NULL REFERENCES user(id) ON DELETE CASCADE,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        used_at REAL,
                        superseded_at REAL
                    );
                    CREATE INDEX one_time_token_by_user ON one_time_token(user_id, purpose);
                    CREATE TABLE session (
                        id TEXT PRIMARY KEY,
                        token_hash TEXT NOT NULL UNIQUE,
                        user_id TEXT NOT NULL REFERENCES user(id) ON DELETE CASCADE,
                        created_at REAL NOT NULL,
                        last_used_at REAL NOT NULL,
                        revoked_at REAL,
                        client_ip TEXT
                    );
                    CREATE INDEX session_by_user ON session(user_id);
                    -- Access-token signing keys; a retired key stays published while its tokens may live.
                    CREATE TABLE signing_key (
                        kid TEXT PRIMARY KEY,
                        private_key BLOB NOT NULL,
                        created_at REAL NOT NULL,
                        retired_at REAL
                    );
                    -- Failed sign-ins per 'account:<email>' and per 'ip:<address>'.
                    CREATE TABLE login_throttle (
                        subject TEXT PRIMARY KEY,
                        failures INTEGER NOT NULL,
                        last_failure_at REAL NOT NULL,
                        locked_until REAL
                    );
                    -- Transactional outbox: written with the change that causes the email, sent later.
                    CREATE TABLE email_outbox (
                        id TEXT PRIMARY KEY,
                        kind TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        subject TEXT NOT NULL,
                        body TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at REAL NOT NULL,
                        sent_at REAL,
                        failed_at REAL,
                        last_error TEXT
                    );
                    CREATE INDEX email_outbox_due ON email_outbox(next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
                    CREATE INDEX email_outbox_by_recipient ON email_outbox(recipient, kind, created_at);
                    CREATE TABLE audit_event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        at REAL NOT NULL,
                        event TEXT NOT NULL,
                        user_id TEXT,
                        email TEXT,
                        client_ip TEXT,
                        detail TEXT
                    );
                    CREATE INDEX audit_event_by_user ON audit_event(user_id, at);
                    """)
        }
        // One mailbox, one account: addresses compare case-insensitively. Accounts made before
        // this that differ only in case are kept, but all except the oldest are marked as
        // duplicates (no longer found by address) and reported at start, instead of failing.
        migrator.registerMigration("identity v2: addresses compare case-insensitively") { db in
            try db.execute(
                sql: """
                    ALTER TABLE user ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
                    ALTER TABLE user ADD COLUMN duplicate_of TEXT REFERENCES user(id);
                    UPDATE user SET email_key = lower(email);
                    UPDATE user SET duplicate_of = (
                        SELECT first.id FROM user AS first WHERE first.email_key = user.email_key
                        ORDER BY first.created_at, first.id LIMIT 1)
                    WHERE id != (SELECT first.id FROM user AS first WHERE first.email_key = user.email_key
                                 ORDER BY first.created_at, first.id LIMIT 1);
                    CREATE UNIQUE INDEX user_by_email_key ON user(email_key) WHERE duplicate_of IS NULL;
                    CREATE INDEX email_outbox_by_recipient_nocase ON email_outbox(recipient COLLATE NOCASE, kind, created_at);
                    """)
        }
        // A verification link carries the password (hash) and name of the registration that asked
        // for it; links sent on request carry none, and verifying with them sets a new password.
        migrator.registerMigration("identity v3: verification links carry their registration") { db in
            try db.execute(
                sql: """
                    ALTER TABLE one_time_token ADD COLUMN password_hash TEXT;
                    ALTER TABLE one_time_token ADD COLUMN full_name TEXT;
                    """)
        }
        // Reset requests are queued whatever the address, and looked at by the outbox sender, so
        // answering takes the same work for a known and an unknown address.
        migrator.registerMigration("identity v4: password reset requests") { db in
            try db.execute(
                sql: """
                    CREATE TABLE password_reset_request (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        email TEXT NOT NULL,
                        client_ip TEXT,
                        requested_at REAL NOT NULL
                    );
                    """)
        }
        // The outbox is leased: with several senders, each email is sent by one at a time.
        migrator.registerMigration("identity v5: outbox leases") { db in
            try db.execute(sql: "ALTER TABLE email_outbox ADD COLUMN lease_until REAL")
        }
        // The trace of the call that queued an email, so its delivery's span links back to it.
        migrator.registerMigration("identity v6: outbox rows remember their trace") { db in
            try db.execute(sql: "ALTER TABLE email_outbox ADD COLUMN trace_parent TEXT")
        }
        return migrator
    }

    /// Accounts the v2 migration found sharing a mailbox with an older one: id, address and the
    /// account kept, for the operator to merge or remove.
    static func duplicateAccounts(_ db: Database) throws -> [(id: String, email: String, keptID: String)] {
        try Row.fetchAll(db, sql: "SELECT id, email, duplicate_of FROM user WHERE duplicate_of IS NOT NULL ORDER BY email_key")
            .map { ($0["id"], $0["email"], $0["duplicate_of"]) }
    }
}
