import GRDB

/// The SQLite schema as small numbered steps; GRDB records which ran in `grdb_migrations`.
/// Times are unix seconds (REAL), the same representation the PostgreSQL store uses.
enum SQLiteMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001-clients") { db in
            try db.execute(sql: """
                CREATE TABLE clients (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    key_hash TEXT NOT NULL UNIQUE,
                    signing_secret TEXT NOT NULL,
                    created_at REAL NOT NULL
                )
                """)
        }
        migrator.registerMigration("002-tasks") { db in
            try db.execute(sql: """
                CREATE TABLE tasks (
                    id TEXT PRIMARY KEY,
                    client_id TEXT NOT NULL,
                    request_json TEXT NOT NULL,
                    callback_url TEXT NOT NULL,
                    metadata_json TEXT,
                    state TEXT NOT NULL,
                    upstream_task_id TEXT,
                    upstream_json TEXT,
                    error_code TEXT,
                    error_message TEXT,
                    created_at REAL NOT NULL,
                    submitted_at REAL,
                    completed_at REAL,
                    next_run_at REAL,
                    failures INTEGER NOT NULL DEFAULT 0,
                    lease_owner TEXT,
                    lease_expires_at REAL
                );
                CREATE INDEX tasks_due ON tasks (state, next_run_at);
                CREATE INDEX tasks_client ON tasks (client_id, created_at);
                """)
        }
        migrator.registerMigration("003-events") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    id TEXT PRIMARY KEY,
                    task_id TEXT NOT NULL REFERENCES tasks(id),
                    seq INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    callback_url TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at REAL,
                    last_status_code INTEGER,
                    last_error TEXT,
                    delivered_at REAL,
                    lease_owner TEXT,
                    lease_expires_at REAL,
                    UNIQUE (task_id, seq)
                );
                CREATE INDEX events_due ON events (state, next_attempt_at);
                CREATE TABLE delivery_attempts (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL REFERENCES events(id),
                    attempted_at REAL NOT NULL,
                    status_code INTEGER,
                    latency REAL NOT NULL,
                    error TEXT,
                    response_excerpt TEXT
                );
                CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, attempted_at);
                """)
        }
        migrator.registerMigration("004-delivery-engine") { db in
            try db.execute(sql: """
                ALTER TABLE tasks ADD COLUMN callback_events TEXT;
                ALTER TABLE events ADD COLUMN destination TEXT NOT NULL DEFAULT '';
                CREATE INDEX events_task ON events (task_id, seq);
                ALTER TABLE clients ADD COLUMN previous_secret TEXT;
                ALTER TABLE clients ADD COLUMN previous_secret_expires_at REAL;
                ALTER TABLE clients ADD COLUMN revoked_at REAL;
                """)
        }
        migrator.registerMigration("005-idempotency-keys") { db in
            try db.execute(sql: """
                CREATE TABLE idempotency_keys (
                    client_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    task_id TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    PRIMARY KEY (client_id, key)
                );
                CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
                """)
        }
        migrator.registerMigration("006-submission-answer") { db in
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN submission_answer TEXT")
        }
        migrator.registerMigration("007-trace-parent") { db in
            try db.execute(sql: """
                ALTER TABLE tasks ADD COLUMN trace_parent TEXT;
                ALTER TABLE events ADD COLUMN trace_parent TEXT;
                """)
        }
        migrator.registerMigration("008-streams") { db in
            // Events are kept for the stream whether or not a webhook delivers them ('unsubscribed');
            // a stream-only task stores an empty callback_url.
            try db.execute(sql: """
                CREATE TABLE shared_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE INDEX tasks_newest ON tasks (created_at, id);
                CREATE INDEX tasks_state_newest ON tasks (state, created_at, id);
                """)
        }
        migrator.registerMigration("009-submission-pauses") { db in
            // The stop switch: a row per paused scope, a client id or '*' for every client.
            try db.execute(sql: "CREATE TABLE submission_pauses (scope TEXT PRIMARY KEY, paused_at REAL NOT NULL)")
        }
        migrator.registerMigration("010-activity-indexes") { db in
            // The console's activity charts read windows of these times; retention deletes by attempt time.
            try db.execute(sql: """
                CREATE INDEX tasks_completed ON tasks (completed_at);
                CREATE INDEX events_delivered ON events (delivered_at);
                CREATE INDEX delivery_attempts_time ON delivery_attempts (attempted_at);
                """)
        }
        migrator.registerMigration("011-budgets-usage") { db in
            // A client's limits in their configuration form (NULL: unlimited); the usage aggregate, one row
            // per client, accepted day and model, counted from the tasks already stored; in-flight tasks
            // per client counted on an index, so the cap reads at most as many rows as it allows.
            try db.execute(sql: """
                ALTER TABLE clients ADD COLUMN budget TEXT;
                CREATE TABLE usage_daily (
                    client_id TEXT NOT NULL,
                    day TEXT NOT NULL,
                    model TEXT NOT NULL,
                    generations INTEGER NOT NULL,
                    video_seconds INTEGER NOT NULL,
                    succeeded INTEGER NOT NULL,
                    failed INTEGER NOT NULL,
                    cancelled INTEGER NOT NULL,
                    PRIMARY KEY (client_id, day, model)
                ) WITHOUT ROWID;
                INSERT INTO usage_daily
                SELECT client_id, date(created_at, 'unixepoch'), json_extract(request_json, '$.model'),
                       SUM(state <> 'cancelled'),
                       SUM(CASE WHEN state <> 'cancelled' THEN COALESCE(json_extract(request_json, '$.duration'), \(GenerationRequest.defaultDuration)) ELSE 0 END),
                       SUM(state = 'succeeded'), SUM(state = 'failed'), SUM(state = 'cancelled')
                FROM tasks GROUP BY 1, 2, 3;
                CREATE INDEX tasks_client_state ON tasks (client_id, state);
                """)
        }
        migrator.registerMigration("012-in-flight-from-usage") { db in
            // A client's tasks in flight are its accepted generations not yet ended, summed over the usage
            // rows that still have any: a few recent rows, however many tasks are queued, where counting
            // tasks read as many rows as were in flight.
            try db.execute(sql: """
                DROP INDEX tasks_client_state;
                \(UsageStatements.inFlightIndex);
                """)
        }
        migrator.registerMigration("013-video-copies") { db in
            // The relay's copies of a task's videos (`--store-videos`), as JSON; claimed like the
            // other stages, on `tasks_due`, in the new state `storing`.
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN video_copies_json TEXT")
        }
        migrator.registerMigration("014-endpoints-deliveries") { db in
            // Fan-out: an event is delivered to its task's callback and to each of the client's matching
            // endpoints, each (event, destination) a row of `deliveries` with its own attempts and lease
            // (endpoint_id '' is the callback). `events` keeps the log the streams read, now also
            // client events without a task: rebuilt, since SQLite cannot relax NOT NULL in place.
            try db.execute(sql: """
                CREATE TABLE endpoints (
                    id TEXT PRIMARY KEY,
                    client_id TEXT NOT NULL,
                    url TEXT NOT NULL,
                    destination TEXT NOT NULL,
                    description TEXT NOT NULL,
                    event_types TEXT NOT NULL,
                    enabled INTEGER NOT NULL,
                    disabled_reason TEXT,
                    max_rate INTEGER,
                    next_send_at REAL,
                    signing_secret TEXT NOT NULL,
                    previous_secret TEXT,
                    previous_secret_expires_at REAL,
                    failing_since REAL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE INDEX endpoints_client ON endpoints (client_id, created_at);
                CREATE TABLE deliveries (
                    event_id TEXT NOT NULL REFERENCES events(id),
                    endpoint_id TEXT NOT NULL,
                    task_id TEXT,
                    seq INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    url TEXT NOT NULL,
                    destination TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at REAL,
                    last_status_code INTEGER,
                    last_error TEXT,
                    delivered_at REAL,
                    lease_owner TEXT,
                    lease_expires_at REAL,
                    PRIMARY KEY (event_id, endpoint_id)
                ) WITHOUT ROWID;
                INSERT INTO deliveries
                SELECT id, '', task_id, seq, type, client_id, callback_url, destination, created_at, state, attempts, next_attempt_at,
                       last_status_code, last_error, delivered_at, lease_owner, lease_expires_at
                FROM events WHERE state <> 'unsubscribed';
                CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
                CREATE INDEX deliveries_order ON deliveries (task_id, endpoint_id, seq);
                CREATE INDEX deliveries_delivered ON deliveries (delivered_at);
                CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, state);
                CREATE TABLE events_log (
                    id TEXT PRIMARY KEY,
                    task_id TEXT REFERENCES tasks(id),
                    seq INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    client_id TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    trace_parent TEXT,
                    UNIQUE (task_id, seq)
                );
                INSERT INTO events_log SELECT id, task_id, seq, type, payload, client_id, created_at, trace_parent FROM events;
                DROP TABLE events;
                ALTER TABLE events_log RENAME TO events;
                CREATE INDEX events_client ON events (client_id, created_at);
                ALTER TABLE delivery_attempts ADD COLUMN endpoint_id TEXT NOT NULL DEFAULT '';
                DROP INDEX delivery_attempts_event;
                CREATE INDEX delivery_attempts_delivery ON delivery_attempts (event_id, endpoint_id, attempted_at);
                CREATE INDEX delivery_attempts_endpoint ON delivery_attempts (endpoint_id, attempted_at);
                """)
        }
        migrator.registerMigration("015-pending-deliveries-order") { db in
            // The claim's "no earlier event of this task still pending for this destination" probe: only
            // pending rows, so it reads a handful however many deliveries a task has had.
            try db.execute(sql: "CREATE INDEX deliveries_pending_order ON deliveries (task_id, endpoint_id, seq) WHERE state = 'pending'")
        }
        migrator.registerMigration("016-instances") { db in
            // Relay incarnations and their heartbeats: a submitting task's owner is judged gone only on evidence.
            try db.execute(sql: """
                CREATE TABLE instances (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at REAL NOT NULL,
                                        heartbeat_at REAL NOT NULL, stopped_at REAL);
                CREATE INDEX instances_host ON instances (host, started_at);
                """)
        }
        migrator.registerMigration("017-upstream-accounts") { db in
            // A hold on submissions while the upstream account refuses work, and its probes.
            try db.execute(sql: """
                CREATE TABLE upstream_accounts (key_id TEXT PRIMARY KEY, reason TEXT NOT NULL, held_since REAL NOT NULL,
                                                next_probe_at REAL NOT NULL, probes INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("018-upstream-keys") { db in
            // Upstream keys beyond the configured one, the key each task was sent with, holds and paid generations per key.
            try db.execute(sql: """
                CREATE TABLE upstream_keys (name TEXT PRIMARY KEY, secret TEXT NOT NULL, client_id TEXT, max_in_flight INTEGER,
                                            rate REAL, enabled INTEGER NOT NULL, created_at REAL NOT NULL);
                CREATE INDEX upstream_keys_client ON upstream_keys (client_id);
                ALTER TABLE tasks ADD COLUMN upstream_key TEXT;
                CREATE INDEX tasks_upstream_key_in_flight ON tasks (upstream_key, state) WHERE state IN ('queued', 'submitting', 'running');
                UPDATE upstream_accounts SET key_id = 'default' WHERE key_id = 'upstream';
                CREATE TABLE upstream_usage_daily (upstream_key TEXT NOT NULL, client_id TEXT NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL,
                                                   generations INTEGER NOT NULL, video_seconds INTEGER NOT NULL, succeeded INTEGER NOT NULL,
                                                   failed INTEGER NOT NULL, PRIMARY KEY (upstream_key, client_id, day, model));
                CREATE INDEX upstream_usage_daily_day ON upstream_usage_daily (day);
                """)
        }
        return migrator
    }
}
