import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL schema as numbered steps, applied once each under an advisory lock so that
/// relays starting together do not race. The steps are SQLite's, by number and name (a test holds
/// them to it), each doing on PostgreSQL what its namesake does on SQLite.
enum PostgresMigrations {
    static let steps: [(name: String, statements: [String])] = [
        // PostgreSQL came after SQLite's first five steps: its tables were created whole in the first
        // five, which is why 004 has nothing to add here.
        ("001-clients", [
            """
            CREATE TABLE clients (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, signing_secret TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, previous_secret TEXT, previous_secret_expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION)
            """,
        ]),
        ("002-tasks", [
            """
            CREATE TABLE tasks (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, request_json TEXT NOT NULL, callback_url TEXT NOT NULL,
                metadata_json TEXT, callback_events TEXT, state TEXT NOT NULL, upstream_task_id TEXT, upstream_json TEXT, error_code TEXT,
                error_message TEXT, created_at DOUBLE PRECISION NOT NULL, submitted_at DOUBLE PRECISION, completed_at DOUBLE PRECISION,
                next_run_at DOUBLE PRECISION, failures BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires_at DOUBLE PRECISION)
            """,
            "CREATE INDEX tasks_due ON tasks (state, next_run_at)",
            "CREATE INDEX tasks_client ON tasks (client_id, created_at)",
        ]),
        ("003-events", [
            """
            CREATE TABLE events (id TEXT PRIMARY KEY, task_id TEXT NOT NULL REFERENCES tasks(id), seq BIGINT NOT NULL, type TEXT NOT NULL,
                payload BYTEA NOT NULL, callback_url TEXT NOT NULL, destination TEXT NOT NULL, client_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION,
                last_status_code BIGINT, last_error TEXT, delivered_at DOUBLE PRECISION, lease_owner TEXT, lease_expires_at DOUBLE PRECISION,
                UNIQUE (task_id, seq))
            """,
            "CREATE INDEX events_due ON events (state, next_attempt_at)",
            """
            CREATE TABLE delivery_attempts (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL REFERENCES events(id),
                attempted_at DOUBLE PRECISION NOT NULL, status_code BIGINT, latency DOUBLE PRECISION NOT NULL, error TEXT, response_excerpt TEXT)
            """,
            "CREATE INDEX delivery_attempts_event ON delivery_attempts (event_id, attempted_at)",
        ]),
        ("004-delivery-engine", []),
        ("005-idempotency-keys", [
            """
            CREATE TABLE idempotency_keys (client_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, task_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (client_id, key))
            """,
            "CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at)",
        ]),
        ("006-submission-answer", ["ALTER TABLE tasks ADD COLUMN submission_answer TEXT"]),
        ("007-trace-parent", ["ALTER TABLE tasks ADD COLUMN trace_parent TEXT", "ALTER TABLE events ADD COLUMN trace_parent TEXT"]),
        // Events are kept for the stream whether or not a webhook delivers them ('unsubscribed');
        // a stream-only task stores an empty callback_url.
        ("008-streams", [
            "CREATE TABLE shared_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE INDEX tasks_newest ON tasks (created_at, id)",
            "CREATE INDEX tasks_state_newest ON tasks (state, created_at, id)",
        ]),
        // The stop switch: a row per paused scope, a client id or '*' for every client.
        ("009-submission-pauses", ["CREATE TABLE submission_pauses (scope TEXT PRIMARY KEY, paused_at DOUBLE PRECISION NOT NULL)"]),
        // The console's activity charts read windows of these times; retention deletes by attempt time.
        ("010-activity-indexes", ["CREATE INDEX tasks_completed ON tasks (completed_at)", "CREATE INDEX events_delivered ON events (delivered_at)",
                                  "CREATE INDEX delivery_attempts_time ON delivery_attempts (attempted_at)"]),
        // A client's limits in their configuration form (NULL: unlimited); the usage aggregate, one row per
        // client, accepted day and model, counted from the tasks already stored; in-flight tasks per
        // client counted on an index, so the cap reads at most as many rows as it allows.
        ("011-budgets-usage", [
            "ALTER TABLE clients ADD COLUMN budget TEXT",
            """
            CREATE TABLE usage_daily (client_id TEXT NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL, generations BIGINT NOT NULL,
                video_seconds BIGINT NOT NULL, succeeded BIGINT NOT NULL, failed BIGINT NOT NULL, cancelled BIGINT NOT NULL,
                PRIMARY KEY (client_id, day, model))
            """,
            """
            INSERT INTO usage_daily
            SELECT client_id, to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), request_json::json->>'model',
                   COUNT(*) FILTER (WHERE state <> 'cancelled'),
                   COALESCE(SUM(COALESCE((request_json::json->>'duration')::bigint, \(GenerationRequest.defaultDuration)))
                            FILTER (WHERE state <> 'cancelled'), 0),
                   COUNT(*) FILTER (WHERE state = 'succeeded'), COUNT(*) FILTER (WHERE state = 'failed'),
                   COUNT(*) FILTER (WHERE state = 'cancelled')
            FROM tasks GROUP BY 1, 2, 3
            """,
            "CREATE INDEX tasks_client_state ON tasks (client_id, state)",
        ]),
        ("012-in-flight-from-usage", ["DROP INDEX tasks_client_state", UsageStatements.inFlightIndex]),
        ("013-video-copies", ["ALTER TABLE tasks ADD COLUMN video_copies_json TEXT"]),
        ("014-endpoints-deliveries", [
            """
            CREATE TABLE endpoints (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, url TEXT NOT NULL, destination TEXT NOT NULL,
                description TEXT NOT NULL, event_types TEXT NOT NULL, enabled BIGINT NOT NULL, disabled_reason TEXT, max_rate BIGINT,
                next_send_at DOUBLE PRECISION, signing_secret TEXT NOT NULL, previous_secret TEXT, previous_secret_expires_at DOUBLE PRECISION,
                failing_since DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX endpoints_client ON endpoints (client_id, created_at)",
            """
            CREATE TABLE deliveries (event_id TEXT NOT NULL REFERENCES events(id), endpoint_id TEXT NOT NULL, task_id TEXT, seq BIGINT NOT NULL,
                type TEXT NOT NULL, client_id TEXT NOT NULL, url TEXT NOT NULL, destination TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION, last_status_code BIGINT,
                last_error TEXT, delivered_at DOUBLE PRECISION, lease_owner TEXT, lease_expires_at DOUBLE PRECISION,
                PRIMARY KEY (event_id, endpoint_id))
            """,
            """
            INSERT INTO deliveries
            SELECT id, '', task_id, seq, type, client_id, callback_url, destination, created_at, state, attempts, next_attempt_at,
                   last_status_code, last_error, delivered_at, lease_owner, lease_expires_at
            FROM events WHERE state <> 'unsubscribed'
            """,
            "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
            "CREATE INDEX deliveries_order ON deliveries (task_id, endpoint_id, seq)",
            "CREATE INDEX deliveries_delivered ON deliveries (delivered_at)",
            "CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, state)",
            "DROP INDEX events_due",
            "DROP INDEX events_delivered",
            """
            ALTER TABLE events ALTER COLUMN task_id DROP NOT NULL, DROP COLUMN callback_url, DROP COLUMN destination, DROP COLUMN state,
                DROP COLUMN attempts, DROP COLUMN next_attempt_at, DROP COLUMN last_status_code, DROP COLUMN last_error,
                DROP COLUMN delivered_at, DROP COLUMN lease_owner, DROP COLUMN lease_expires_at
            """,
            "CREATE INDEX events_client ON events (client_id, created_at)",
            "ALTER TABLE delivery_attempts ADD COLUMN endpoint_id TEXT NOT NULL DEFAULT ''",
            "DROP INDEX delivery_attempts_event",
            "CREATE INDEX delivery_attempts_delivery ON delivery_attempts (event_id, endpoint_id, attempted_at)",
            "CREATE INDEX delivery_attempts_endpoint ON delivery_attempts (endpoint_id, attempted_at)",
        ]),
        // Without it the planner walked every pending row for each candidate (the pending range of
        // deliveries_due), quadratic in the backlog.
        ("015-pending-deliveries-order", [
            "CREATE INDEX deliveries_pending_order ON deliveries (task_id, endpoint_id, seq) WHERE state = 'pending'",
        ]),
        ("016-instances", [
            """
            CREATE TABLE instances (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
                heartbeat_at DOUBLE PRECISION NOT NULL, stopped_at DOUBLE PRECISION)
            """,
            "CREATE INDEX instances_host ON instances (host, started_at)",
        ]),
        ("017-upstream-accounts", [
            """
            CREATE TABLE upstream_accounts (key_id TEXT PRIMARY KEY, reason TEXT NOT NULL, held_since DOUBLE PRECISION NOT NULL,
                next_probe_at DOUBLE PRECISION NOT NULL, probes BIGINT NOT NULL)
            """,
        ]),
        ("018-upstream-keys", [
            """
            CREATE TABLE upstream_keys (name TEXT PRIMARY KEY, secret TEXT NOT NULL, client_id TEXT, max_in_flight BIGINT,
                rate DOUBLE PRECISION, enabled BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX upstream_keys_client ON upstream_keys (client_id)",
            "ALTER TABLE tasks ADD COLUMN upstream_key TEXT",
            "CREATE INDEX tasks_upstream_key_in_flight ON tasks (upstream_key, state) WHERE state IN ('queued', 'submitting', 'running')",
            "UPDATE upstream_accounts SET key_id = 'default' WHERE key_id = 'upstream'",
            """
            CREATE TABLE upstream_usage_daily (upstream_key TEXT NOT NULL, client_id TEXT NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL,
                generations BIGINT NOT NULL, video_seconds BIGINT NOT NULL, succeeded BIGINT NOT NULL, failed BIGINT NOT NULL,
                PRIMARY KEY (upstream_key, client_id, day, model))
            """,
            "CREATE INDEX upstream_usage_daily_day ON upstream_usage_daily (day)",
        ]),
    ]

    /// Names an earlier numbering recorded (before PostgreSQL's steps took SQLite's numbers), and the
    /// steps each stands for.
    static let renamed: [(old: String, new: [String])] = [
        ("001-initial-schema", ["001-clients", "002-tasks", "003-events", "004-delivery-engine", "005-idempotency-keys"]),
    ] + zip(["002-submission-answer", "003-trace-parent", "004-streams", "005-submission-pauses", "006-activity-indexes", "007-budgets-usage",
             "008-in-flight-from-usage", "009-video-copies", "010-endpoints-deliveries", "011-pending-deliveries-order"],
            steps.dropFirst(5).map(\.name)).map { ($0, [$1]) }

    static func run(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7318201)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)", logger: logger)
            for (old, new) in renamed {
                for try await appliedAt in try await connection.query(
                    "DELETE FROM schema_migrations WHERE name = \(old) RETURNING applied_at", logger: logger).decode(Double.self) {
                    for name in new {
                        try await connection.query("INSERT INTO schema_migrations (name, applied_at) VALUES (\(name), \(appliedAt))", logger: logger)
                    }
                }
            }
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for step in steps where !applied.contains(step.name) {
                for statement in step.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (\(step.name), \(Date().timeIntervalSince1970))", logger: logger)
            }
        }
    }
}
