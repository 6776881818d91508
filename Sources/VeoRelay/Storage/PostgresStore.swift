import Foundation
import Logging
import PostgresNIO

/// The scale-out store: PostgreSQL through postgres-nio, so several relay instances share one
/// database. Claims lock their rows with `FOR UPDATE SKIP LOCKED`, so concurrent instances each take
/// different due rows without waiting on one another; every other method is one transaction.
public final class PostgresStore: Store {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// Connects (`postgres://user:password@host:port/database`) and brings the schema up to date.
    /// The first connection is made alone and bounded by `connectTimeout`, so that a wrong address or
    /// wrong credentials fail the start with the reason, where the pool would retry quietly forever.
    public init(url: String, logger: Logger = Logger(label: "veo-relay.postgres"), connectTimeout: Duration = .seconds(4)) async throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, let user = components.user
        else { throw ConfigurationError("a PostgreSQL URL looks like postgres://user:password@host:5432/database") }
        let port = components.port ?? 5432
        let database = components.path.isEmpty ? nil : String(components.path.dropFirst())
        var first = PostgresConnection.Configuration(host: host, port: port, username: user, password: components.password,
                                                     database: database, tls: .disable)
        first.options.connectTimeout = .interval(Double(connectTimeout.components.seconds))
        do {
            let connection = try await PostgresConnection.connect(configuration: first, id: 0, logger: logger)
            do {
                try await PostgresMigrations.run(on: connection, logger: logger)
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
        } catch {
            throw StoreOpenError(location: StoreLocation.display(url), reason: Self.reason(error))
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: components.password,
                                                         database: database, tls: .disable)
        configuration.options.connectTimeout = connectTimeout
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
    }

    /// What went wrong, in one line: the server's own message when it sent one (bad password,
    /// unknown database), else the connection error. PSQLError hides both from `description`.
    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return message }
        if let underlying = error.underlying { return "\(underlying)" }
        return "\(error.code)"
    }

    /// Closes the connection pool.
    public func close() {
        runner.cancel()
    }

    @discardableResult
    func rows(_ query: PostgresQuery, on connection: PostgresConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        let result = if let connection {
            try await connection.query(query, logger: logger)
        } else {
            try await client.query(query, logger: logger)
        }
        return try await result.collect().map { $0.makeRandomAccess() }
    }

    /// Runs `body` in a transaction. postgres-nio wraps what the body throws; the store's own errors
    /// (`leaseLost`, …) come back out unwrapped, so callers see the same errors as from SQLite.
    /// A `repeatable` transaction (see `Store`) commits without waiting for its WAL flush.
    private func transaction<T: Sendable>(repeatable: Bool = false, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                if repeatable { try await connection.query("SET LOCAL synchronous_commit = off", logger: logger) }
                return try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error
        }
    }

    public func backlog(now: Date) async throws -> BacklogStatistics {
        var bindings = PostgresBindings()
        bindings.append(now.timeIntervalSince1970)
        return try BacklogQuery.statistics(from: try await rows(PostgresQuery(unsafeSQL: BacklogQuery.sql(now: "$1"), binds: bindings)))
    }

    public func checkReady() async throws {
        let applied = Set(try await rows("SELECT name FROM schema_migrations").map { try $0.text("name") })
        let missing = PostgresMigrations.steps.map(\.name).filter { !applied.contains($0) }
        guard missing.isEmpty else {
            throw StoreNotReady(description: "the database lacks migrations \(missing.joined(separator: ", "))")
        }
    }

    // MARK: Tasks

    public func insert(_ batch: [TaskInsertion]) async throws -> [InsertOutcome] {
        let columns = try batch.map { try TaskColumns($0.task) }
        // Without idempotency keys (most intake batches, every bulk fill): one statement. A duplicate
        // id fails it whole; row by row below then names the duplicate.
        if batch.allSatisfy({ $0.idempotency == nil }) {
            do {
                try await transaction { connection in
                    try await insertTasks(zip(batch, columns).map { NewTaskRow($0.task, columns: $1) }, on: connection)
                }
                return batch.map { _ in .created }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {}
        }
        return try await transaction { connection in
            var outcomes: [InsertOutcome] = []
            for (insertion, columns) in zip(batch, columns) {
                outcomes.append(try await insert(insertion, columns: columns, on: connection))
            }
            return outcomes
        }
    }

    private func insert(_ insertion: TaskInsertion, columns: TaskColumns, on connection: PostgresConnection) async throws -> InsertOutcome {
        let task = insertion.task
        if let idempotency = insertion.idempotency {
            let inserted = try await rows("""
                INSERT INTO idempotency_keys (client_id, key, fingerprint, task_id, created_at)
                VALUES (\(task.clientID), \(idempotency.key), \(idempotency.fingerprint), \(task.id), \(task.createdAt.timeIntervalSince1970))
                ON CONFLICT (client_id, key) DO NOTHING RETURNING task_id
                """, on: connection)
            if inserted.isEmpty {
                guard let existing = try await rows("""
                    SELECT fingerprint, task_id FROM idempotency_keys WHERE client_id = \(task.clientID) AND key = \(idempotency.key)
                    """, on: connection).first
                else { throw StoreError.missingValue("idempotency_keys") }
                return try existing.text("fingerprint") == idempotency.fingerprint ? .replayed(taskID: try existing.text("task_id")) : .conflict
            }
        }
        do {
            try await insertTasks([NewTaskRow(task, columns: columns)], on: connection)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StoreError.duplicateTask(task.id)
        }
        return .created
    }

    public func task(id: String, clientID: String?) async throws -> RelayTask? {
        try await rows("SELECT * FROM tasks WHERE id = \(id) AND (\(clientID)::text IS NULL OR client_id = \(clientID))").first.map(RowMapping.task)
    }

    public func tasks(_ query: TaskQuery) async throws -> [RelayTask] {
        let before = query.before?.createdAt.timeIntervalSince1970
        return try await rows("""
            SELECT * FROM tasks
            WHERE (\(query.state?.rawValue)::text IS NULL OR state = \(query.state?.rawValue))
              AND (\(query.clientID)::text IS NULL OR client_id = \(query.clientID))
              AND (\(before)::double precision IS NULL OR (created_at, id) < (\(before), \(query.before?.id ?? "")))
            ORDER BY created_at DESC, id DESC LIMIT \(query.limit)
            """).map(RowMapping.task)
    }

    /// What each claim selects, with `$1` now and `$2` the limit (and `$3` the excluded destinations).
    static func candidates(_ work: TaskWork) -> String {
        switch work {
        case .submission:
            // Two index ranges on (state, next_run_at), each locked and cut to the limit in due order
            // before they are merged: one OR'd condition would be a bitmap scan and a sort of the whole
            // backlog. (Row locks are not allowed in a UNION's branches; they are in a CTE.)
            """
            WITH queued AS (
                SELECT id, next_run_at FROM tasks
                WHERE state = 'queued' AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)
                ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED),
            abandoned AS (
                SELECT id, next_run_at FROM tasks WHERE state = 'submitting' AND lease_expires_at < $1
                ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            SELECT id FROM (SELECT * FROM queued UNION ALL SELECT * FROM abandoned) due ORDER BY next_run_at LIMIT $2
            """
        case .poll:
            """
            SELECT id FROM tasks
            WHERE state = 'running' AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)
            ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED
            """
        }
    }

    static let deliveryCandidates = """
        SELECT e.id FROM events e
        WHERE e.state = 'pending' AND e.next_attempt_at <= $1 AND (e.lease_expires_at IS NULL OR e.lease_expires_at < $1)
          AND NOT (e.destination = ANY($3))
          AND NOT EXISTS (SELECT 1 FROM events p WHERE p.task_id = e.task_id AND p.seq < e.seq AND p.state = 'pending')
        ORDER BY e.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
        """

    static func bindings(now: Double, limit: Int, excluded: [String]? = nil, lease: Lease? = nil) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(now)
        bindings.append(limit)
        if let excluded { bindings.append(excluded) }
        if let lease {
            bindings.append(lease.owner)
            bindings.append(lease.expiresAt.timeIntervalSince1970)
        }
        return bindings
    }

    /// Makes a statement run on its own (its own transaction) a repeatable write (see `Store`): it
    /// commits without waiting for its WAL flush. One round trip, where BEGIN, SET LOCAL, the statement
    /// and COMMIT would be four. The setting holds for the statement's transaction only and is read at
    /// its commit; it is evaluated once (an InitPlan), and only when a row is claimed — a claim that
    /// writes nothing has nothing to flush.
    static let commitsWithoutFlush = "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"

    /// The statements that claim work, as `claimTasks` and `claimDeliveries` run them: each one
    /// statement, in one round trip.
    static func claimStatement(_ work: TaskWork) -> String {
        "UPDATE tasks SET lease_owner = $3, lease_expires_at = $4 WHERE id IN (\(candidates(work))) AND \(commitsWithoutFlush) RETURNING *"
    }

    /// Each claimed event comes back with its client's signing secrets (the previous one while its
    /// grace lasts), so the claim needs no second query.
    static let deliveryClaimStatement = """
        UPDATE events SET lease_owner = $4, lease_expires_at = $5 WHERE id IN (\(deliveryCandidates)) AND \(commitsWithoutFlush)
        RETURNING id, task_id, type, payload, callback_url, destination, client_id, attempts, next_attempt_at, trace_parent,
            (SELECT signing_secret FROM clients WHERE clients.id = events.client_id) AS signing_secret,
            (SELECT previous_secret FROM clients WHERE clients.id = events.client_id AND previous_secret_expires_at > $1) AS previous
        """

    public func explainClaims(now: Date) async throws -> [ClaimPlan] {
        let at = now.timeIntervalSince1970
        let lease = Lease(owner: "explain", expiresAt: now)
        var plans: [ClaimPlan] = []
        for (name, sql, bindings) in [("submission", Self.claimStatement(.submission), Self.bindings(now: at, limit: 32, lease: lease)),
                                      ("poll", Self.claimStatement(.poll), Self.bindings(now: at, limit: 32, lease: lease)),
                                      ("delivery", Self.deliveryClaimStatement, Self.bindings(now: at, limit: 32, excluded: [], lease: lease))] {
            // The plan's nodes and index conditions, without cost estimates and row filters. EXPLAIN
            // without ANALYZE plans the statement and does not run it.
            let lines = try await rows(PostgresQuery(unsafeSQL: "EXPLAIN (COSTS OFF) " + sql, binds: bindings)).map { try $0.text("QUERY PLAN") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.hasPrefix("Filter:") && !$0.hasPrefix("Recheck Cond:") }
            plans.append(ClaimPlan(claim: name, plan: lines.joined(separator: "; ")))
        }
        return plans
    }

    public func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease) async throws -> [RelayTask] {
        let query = PostgresQuery(unsafeSQL: Self.claimStatement(work), binds: Self.bindings(now: now.timeIntervalSince1970, limit: limit, lease: lease))
        return try await rows(query)
            .map(RowMapping.task)
            .sorted { ($0.nextRunAt ?? .distantPast) < ($1.nextRunAt ?? .distantPast) }
    }

    public func nextPollDue(now: Date) async throws -> Date? {
        try await rows("""
            SELECT next_run_at FROM tasks WHERE state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < \(now.timeIntervalSince1970))
            ORDER BY next_run_at LIMIT 1
            """).first.flatMap { try $0.optionalReal("next_run_at") }.map(Date.init(timeIntervalSince1970:))
    }

    public func save(_ batch: [TaskTransition]) async throws -> [Bool] {
        let columns = try batch.map { try TaskColumns($0.task) }
        return try await transaction { connection in
            try await Self.writtenInWaves(batch.map(\.task.id)) { wave in
                try await saveTransitions(wave.map { (batch[$0], columns[$0]) }, on: connection)
            }
        }
    }

    // MARK: Deliveries

    public func claimDeliveries(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> [PendingDelivery] {
        let query = PostgresQuery(unsafeSQL: Self.deliveryClaimStatement,
                                  binds: Self.bindings(now: now.timeIntervalSince1970, limit: limit, excluded: destinations.sorted(), lease: lease))
        return try await rows(query)
            .sorted { try ($0.optionalReal("next_attempt_at") ?? 0) < ($1.optionalReal("next_attempt_at") ?? 0) }
            .map { try RowMapping.pendingDelivery($0, secrets: $0) }
    }

    public func releaseDelivery(eventID: String, lease: Lease) async throws {
        try await rows("""
            UPDATE events SET lease_owner = NULL, lease_expires_at = NULL
            WHERE id = \(eventID) AND lease_owner = \(lease.owner) AND \(unescaped: Self.commitsWithoutFlush)
            """)
    }

    public func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool] {
        try await transaction(repeatable: true) { connection in
            try await Self.writtenInWaves(records.map(\.attempt.eventID)) { wave in
                try await recordAttemptRows(wave.map { AttemptRow(records[$0]) }, on: connection)
            }
        }
    }

    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await rows("""
            SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM events WHERE task_id = \(taskID) AND state <> 'unsubscribed'
            ORDER BY seq DESC LIMIT 1
            """).first.map(RowMapping.callbackSummary)
    }

    public func deliveryLog(taskID: String, clientID: String?) async throws -> [DeliveryRecord]? {
        guard try await !rows("""
            SELECT 1 AS found FROM tasks WHERE id = \(taskID) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            """).isEmpty else { return nil }
        var records = try await rows("SELECT * FROM events WHERE task_id = \(taskID) AND state <> 'unsubscribed' ORDER BY seq")
            .map(RowMapping.delivery)
        for index in records.indices {
            records[index].attemptLog = try await rows("""
                SELECT * FROM delivery_attempts WHERE event_id = \(records[index].eventID) ORDER BY attempted_at, id
                """).map(RowMapping.attempt)
        }
        return records
    }

    public func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent] {
        try await rows("SELECT id, task_id, seq, type, payload FROM events WHERE task_id = \(taskID) AND seq > \(sequence) ORDER BY seq")
            .map(RowMapping.streamEvent)
    }

    public func eventSequence(eventID: String, taskID: String) async throws -> Int? {
        try await rows("SELECT seq FROM events WHERE id = \(eventID) AND task_id = \(taskID)").first.map { try $0.integer("seq") }
    }

    public func latestEventSequences(taskIDs: [String]) async throws -> [String: Int] {
        let rows = try await rows("SELECT task_id, MAX(seq) AS seq FROM events WHERE task_id = ANY(\(taskIDs)) GROUP BY task_id")
        return try Dictionary(rows.map { (try $0.text("task_id"), try $0.integer("seq")) }, uniquingKeysWith: max)
    }

    public func deliveries(clientID: String?, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        try await rows("""
            SELECT * FROM events WHERE state = \(state.rawValue) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """).map(RowMapping.delivery)
    }

    public func redeliver(taskID: String, clientID: String?, eventID: String?, now: Date) async throws -> DeliveryRecord? {
        try await rows("""
            UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = \(now.timeIntervalSince1970), delivered_at = NULL,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = (SELECT e.id FROM events e JOIN tasks t ON t.id = e.task_id
                        WHERE e.task_id = \(taskID) AND e.state <> 'unsubscribed' AND (\(clientID)::text IS NULL OR t.client_id = \(clientID))
                          AND (\(eventID)::text IS NULL OR e.id = \(eventID))
                        ORDER BY e.seq DESC LIMIT 1)
            RETURNING *
            """).first.map(RowMapping.delivery)
    }

    public func pruneAttempts(before cutoff: Date) async throws -> Int {
        try await rows("DELETE FROM delivery_attempts WHERE attempted_at < \(cutoff.timeIntervalSince1970) RETURNING id").count
    }

    public func pruneIdempotencyKeys(before cutoff: Date) async throws -> Int {
        try await rows("DELETE FROM idempotency_keys WHERE created_at < \(cutoff.timeIntervalSince1970) RETURNING key").count
    }

    public func resubmit(taskID: String, now: Date) async throws -> Bool {
        try await !rows("""
            UPDATE tasks SET state = 'queued', upstream_task_id = NULL, upstream_json = NULL, error_code = NULL, error_message = NULL,
                submitted_at = NULL, completed_at = NULL, next_run_at = \(now.timeIntervalSince1970), failures = 0,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = \(taskID) AND state = 'failed' RETURNING id
            """).isEmpty
    }

    public func releaseLeases(ownerPrefix prefix: String) async throws {
        try await transaction(repeatable: true) { connection in
            // A `submitting` task keeps its lease: only its expiry may decide the outcome is unknown.
            try await rows("""
                UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE left(lease_owner, length(\(prefix))) = \(prefix) AND state <> 'submitting'
                """, on: connection)
            try await rows("""
                UPDATE events SET lease_owner = NULL, lease_expires_at = NULL WHERE left(lease_owner, length(\(prefix))) = \(prefix)
                """, on: connection)
        }
    }

    public func recordLateSubmission(taskID: String, _ submission: UpstreamSubmission) async throws -> Bool {
        try await !rows("""
            UPDATE tasks SET upstream_task_id = \(submission.taskID), submission_answer = \(submission.answer)
            WHERE id = \(taskID) AND upstream_task_id IS NULL RETURNING id
            """).isEmpty
    }

    // MARK: Clients

    public func client(keyHash: String) async throws -> Client? {
        try await rows("SELECT id, name, signing_secret FROM clients WHERE key_hash = \(keyHash) AND revoked_at IS NULL").first.map(RowMapping.client)
    }

    public func upsertClient(_ client: Client, keyHash: String, now: Date) async throws {
        let graceEnd = now.addingTimeInterval(Client.replacedSecretGrace).timeIntervalSince1970
        try await rows("""
            INSERT INTO clients (id, name, key_hash, signing_secret, created_at)
            VALUES (\(client.id), \(client.name), \(keyHash), \(client.signingSecret), \(now.timeIntervalSince1970))
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, key_hash = excluded.key_hash, revoked_at = NULL,
                previous_secret = CASE WHEN clients.signing_secret <> excluded.signing_secret THEN clients.signing_secret ELSE clients.previous_secret END,
                previous_secret_expires_at = CASE WHEN clients.signing_secret <> excluded.signing_secret THEN \(graceEnd)
                                                  ELSE clients.previous_secret_expires_at END,
                signing_secret = excluded.signing_secret
            """)
    }

    public func clientCount() async throws -> Int {
        try await rows("SELECT COUNT(*) AS count FROM clients WHERE revoked_at IS NULL").first?.integer("count") ?? 0
    }

    public func sharedSecret(named name: String, candidate: String) async throws -> String {
        try await rows("""
            INSERT INTO shared_secrets (name, value) VALUES (\(name), \(candidate)) ON CONFLICT (name) DO NOTHING
            """)
        return try await rows("SELECT value FROM shared_secrets WHERE name = \(name)").first.map { try $0.text("value") } ?? candidate
    }

    public func clients() async throws -> [ClientRecord] {
        try await rows("SELECT * FROM clients ORDER BY created_at, id").map(RowMapping.clientRecord)
    }

    public func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool {
        try await !rows("""
            UPDATE clients SET previous_secret = signing_secret, previous_secret_expires_at = \(previousValidUntil.timeIntervalSince1970),
                signing_secret = \(newSecret)
            WHERE id = \(clientID) AND revoked_at IS NULL RETURNING id
            """).isEmpty
    }

    public func revokeClient(id: String, at date: Date) async throws -> Bool {
        try await !rows("UPDATE clients SET revoked_at = \(date.timeIntervalSince1970) WHERE id = \(id) AND revoked_at IS NULL RETURNING id").isEmpty
    }

    public func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int {
        try await rows("""
            UPDATE clients SET revoked_at = \(date.timeIntervalSince1970)
            WHERE left(id, length(\(prefix))) = \(prefix) AND revoked_at IS NULL AND NOT (id = ANY(\(keep.sorted())))
            RETURNING id
            """).count
    }
}

extension PostgresRandomAccessRow: StoredRow {
    func optionalText(_ column: String) throws -> String? { try self[column].decode(String?.self) }
    func optionalReal(_ column: String) throws -> Double? { try self[column].decode(Double?.self) }
    func optionalInteger(_ column: String) throws -> Int? { try self[column].decode(Int?.self) }
    func optionalBlob(_ column: String) throws -> Data? { try self[column].decode(Data?.self) }
}

/// The PostgreSQL schema as numbered steps, applied once each under an advisory lock so that
/// relays starting together do not race.
enum PostgresMigrations {
    static let steps: [(name: String, statements: [String])] = [
        ("001-initial-schema", [
            """
            CREATE TABLE clients (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, signing_secret TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, previous_secret TEXT, previous_secret_expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE tasks (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, request_json TEXT NOT NULL, callback_url TEXT NOT NULL,
                metadata_json TEXT, callback_events TEXT, state TEXT NOT NULL, upstream_task_id TEXT, upstream_json TEXT, error_code TEXT,
                error_message TEXT, created_at DOUBLE PRECISION NOT NULL, submitted_at DOUBLE PRECISION, completed_at DOUBLE PRECISION,
                next_run_at DOUBLE PRECISION, failures BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires_at DOUBLE PRECISION)
            """,
            "CREATE INDEX tasks_due ON tasks (state, next_run_at)",
            "CREATE INDEX tasks_client ON tasks (client_id, created_at)",
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
            """
            CREATE TABLE idempotency_keys (client_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, task_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (client_id, key))
            """,
            "CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at)",
        ]),
        ("002-submission-answer", ["ALTER TABLE tasks ADD COLUMN submission_answer TEXT"]),
        ("003-trace-parent", ["ALTER TABLE tasks ADD COLUMN trace_parent TEXT", "ALTER TABLE events ADD COLUMN trace_parent TEXT"]),
        // Events are kept for the stream whether or not a webhook delivers them ('unsubscribed');
        // a stream-only task stores an empty callback_url.
        ("004-streams", [
            "CREATE TABLE shared_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE INDEX tasks_newest ON tasks (created_at, id)",
            "CREATE INDEX tasks_state_newest ON tasks (state, created_at, id)",
        ]),
    ]

    static func run(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7318201)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)", logger: logger)
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
