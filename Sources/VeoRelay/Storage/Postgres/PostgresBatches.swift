import Foundation
import PostgresNIO

/// Batches written to PostgreSQL in one statement each instead of a round trip per row: the rows go
/// as one JSON array that `json_to_recordset` spreads into columns (NULLs included, which
/// postgres-nio's array binds cannot carry). A batch that touches one row twice is written in waves,
/// so that each statement sees every row at most once.
extension PostgresStore {
    /// A `tasks` row as intake writes it.
    struct NewTaskRow: Encodable {
        var id, client_id, request_json, callback_url, callback_events, state: String
        var metadata_json, trace_parent: String?
        var created_at: Double
        var next_run_at: Double?
        var failures: Int

        init(_ task: RelayTask, columns: TaskColumns) {
            id = task.id
            client_id = task.clientID
            request_json = columns.requestJSON
            callback_url = StoredCallback.text(task.callbackURL)
            callback_events = columns.callbackEventsJSON
            state = task.state.rawValue
            metadata_json = columns.metadataJSON
            trace_parent = task.traceParent
            created_at = task.createdAt.timeIntervalSince1970
            next_run_at = task.nextRunAt?.timeIntervalSince1970
            failures = task.failures
        }
    }

    /// New task rows in one statement (idempotency keys are the caller's to write first).
    func insertTasks(_ rows: [NewTaskRow], on connection: PostgresConnection) async throws {
        try await self.rows(PostgresQuery(unsafeSQL: """
            INSERT INTO tasks (id, client_id, request_json, callback_url, metadata_json, callback_events, state, created_at, next_run_at,
                               failures, trace_parent)
            SELECT id, client_id, request_json, callback_url, metadata_json, callback_events, state, created_at, next_run_at, failures, trace_parent
            FROM json_to_recordset($1::json) AS r(id text, client_id text, request_json text, callback_url text, metadata_json text,
                                                  callback_events text, state text, created_at double precision, next_run_at double precision,
                                                  failures bigint, trace_parent text)
            """, binds: try Self.recordset(rows)), on: connection)
    }

    /// A task transition's new columns, written where the task is still held under `lease_check`.
    struct TransitionRow: Encodable {
        var id, state, lease_check: String
        var upstream_task_id, submission_answer, upstream_json, error_code, error_message, lease_owner, video_copies_json: String?
        var submitted_at, completed_at, next_run_at, lease_expires_at: Double?
        var failures: Int

        init(_ transition: TaskTransition, columns: TaskColumns) {
            let task = transition.task
            id = task.id
            state = task.state.rawValue
            lease_check = transition.lease.owner
            upstream_task_id = task.upstreamTaskID
            submission_answer = task.submissionAnswer
            upstream_json = columns.upstreamJSON
            error_code = task.error?.code
            error_message = task.error?.message
            submitted_at = task.submittedAt?.timeIntervalSince1970
            completed_at = task.completedAt?.timeIntervalSince1970
            next_run_at = task.nextRunAt?.timeIntervalSince1970
            failures = task.failures
            video_copies_json = columns.videoCopiesJSON
            lease_owner = transition.keepLease ? transition.lease.owner : nil
            lease_expires_at = transition.keepLease ? transition.lease.expiresAt.timeIntervalSince1970 : nil
        }
    }

    /// Writes transitions (whose tasks are distinct), their events and the usage of the tasks that
    /// ended; the ids of the tasks written.
    func saveTransitions(_ batch: [(TaskTransition, TaskColumns)], on connection: PostgresConnection?) async throws -> Set<String> {
        let updated = try await rows(PostgresQuery(unsafeSQL: """
            UPDATE tasks t SET state = r.state, upstream_task_id = r.upstream_task_id, submission_answer = r.submission_answer,
                upstream_json = r.upstream_json, error_code = r.error_code, error_message = r.error_message, submitted_at = r.submitted_at,
                completed_at = r.completed_at, next_run_at = r.next_run_at, failures = r.failures, lease_owner = r.lease_owner,
                lease_expires_at = r.lease_expires_at, video_copies_json = r.video_copies_json
            FROM json_to_recordset($1::json) AS r(id text, state text, lease_check text, upstream_task_id text, submission_answer text,
                                                  upstream_json text, error_code text, error_message text, lease_owner text, video_copies_json text,
                                                  submitted_at double precision, completed_at double precision, next_run_at double precision,
                                                  lease_expires_at double precision, failures bigint)
            WHERE t.id = r.id AND t.lease_owner = r.lease_check AND t.id = ANY($2)
            RETURNING t.id
            """, binds: try Self.recordset(batch.map { TransitionRow($0.0, columns: $0.1) }, keys: batch.map(\.0.task.id))), on: connection)
        let written = Set(try updated.map { try $0.text("id") })
        let events = batch.compactMap { transition, _ in
            transition.event.flatMap { written.contains(transition.task.id) ? NewEventRow($0, of: transition.task) : nil }
        }
        // A task is held only until it ends, so a written end is the task's one end.
        let ends = batch.flatMap { transition, _ in written.contains(transition.task.id) ? UsageChange.ends(transition.task) : [] }
        if !events.isEmpty { try await insertEvents(events, on: connection) }
        try await record(ends, on: connection)
        return written
    }

    /// An attempt and its delivery's new state, written where the delivery is still held under `lease_check`.
    struct AttemptRow: Encodable {
        var event_id, endpoint_id, lease_check, state: String
        var next_attempt_at, delivered_at: Double?
        var attempted_at, latency: Double
        var status_code: Int?
        var error, response_excerpt: String?

        init(_ record: AttemptRecord) {
            let (attempt, update) = (record.attempt, record.deliveryUpdate)
            event_id = attempt.key.eventID
            endpoint_id = attempt.key.target.stored
            lease_check = record.lease.owner
            state = update.state.rawValue
            next_attempt_at = update.nextAttemptAt?.timeIntervalSince1970
            delivered_at = update.deliveredAt?.timeIntervalSince1970
            attempted_at = attempt.attemptedAt.timeIntervalSince1970
            latency = attempt.latency
            status_code = attempt.statusCode
            error = attempt.error
            response_excerpt = attempt.responseExcerpt
        }
    }

    /// Writes attempts (whose deliveries are distinct); the keys of the deliveries written.
    func recordAttemptRows(_ batch: [AttemptRow], on connection: PostgresConnection?) async throws -> Set<String> {
        let columns = """
            r(event_id text, endpoint_id text, lease_check text, state text, next_attempt_at double precision, delivered_at double precision,
              attempted_at double precision, latency double precision, status_code bigint, error text, response_excerpt text)
            """
        // One statement: the deliveries whose lease still holds are updated, and only their attempts logged.
        let updated = try await rows(PostgresQuery(unsafeSQL: """
            WITH r AS (SELECT * FROM json_to_recordset($1::json) AS \(columns)),
            updated AS (
                UPDATE deliveries d SET state = r.state, attempts = d.attempts + 1, next_attempt_at = r.next_attempt_at,
                    last_status_code = r.status_code, last_error = r.error, delivered_at = r.delivered_at, lease_owner = NULL, lease_expires_at = NULL
                FROM r
                WHERE d.event_id = r.event_id AND d.endpoint_id = r.endpoint_id AND d.lease_owner = r.lease_check AND d.event_id = ANY($2)
                  AND \(Self.commitsWithoutFlush)
                RETURNING d.event_id, d.endpoint_id),
            logged AS (
                INSERT INTO delivery_attempts (event_id, endpoint_id, attempted_at, status_code, latency, error, response_excerpt)
                SELECT r.event_id, r.endpoint_id, r.attempted_at, r.status_code, r.latency, r.error, r.response_excerpt
                FROM r JOIN updated USING (event_id, endpoint_id))
            SELECT event_id, endpoint_id FROM updated
            """, binds: try Self.recordset(batch, keys: batch.map(\.event_id))), on: connection)
        return Set(try updated.map { try RowMapping.deliveryKey($0).description })
    }

    static func recordset(_ rows: [some Encodable]) throws -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(String(decoding: try JSONEncoder().encode(rows), as: UTF8.self))
        return binds
    }

    /// The rows ($1) and the keys they are joined on ($2, text[]). A statement that joins a table on the
    /// rows also filters `key = ANY($2)`, which the planner estimates from the array's length and looks
    /// up by index: `json_to_recordset` alone is estimated at 100 rows, so a table of some thousands was
    /// read whole for each batch (3 ms at 6,000 deliveries).
    static func recordset(_ rows: [some Encodable], keys: [String]) throws -> PostgresBindings {
        var binds = try recordset(rows)
        binds.append(keys)
        return binds
    }

    /// Writes rows keyed by `keys` (a row's key: its task id or delivery key) in waves in which no key repeats,
    /// the rows of one key in their order; `write` takes one wave's row indices and returns the keys it
    /// wrote. Whether each row was written, in order.
    static func writtenInWaves(_ keys: [String], write: ([Int]) async throws -> Set<String>) async throws -> [Bool] {
        var waves: [[Int]] = []
        var seen: [String: Int] = [:]
        for (index, key) in keys.enumerated() {
            let wave = seen[key, default: 0]
            seen[key] = wave + 1
            if wave == waves.count { waves.append([]) }
            waves[wave].append(index)
        }
        var written = [Bool](repeating: false, count: keys.count)
        for wave in waves {
            let keysWritten = try await write(wave)
            for index in wave { written[index] = keysWritten.contains(keys[index]) }
        }
        return written
    }
}
