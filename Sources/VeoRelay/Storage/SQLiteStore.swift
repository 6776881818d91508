import Foundation
import GRDB

/// The embedded store: one SQLite file in WAL mode through GRDB. Writes are serialised by SQLite,
/// so a claim (an `UPDATE … RETURNING`) is atomic across every process that opens the file.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    let checkpointer: WALCheckpointer

    /// Every connection the store opens. Another connection may hold a lock for a moment (a writer in
    /// another process, a closing connection checkpointing, recovery after a crash): wait for it instead
    /// of failing. Without this, even opening a connection beside a busy writer can fail at its first
    /// read with "database is locked".
    static var connectionConfiguration: Configuration {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        return configuration
    }

    public init(path: String) throws {
        pool = try DatabasePool(path: path, configuration: Self.connectionConfiguration)
        // An accepted task is answered only once committed; FULL syncs the WAL at every commit, so the
        // answer holds through an OS crash or power loss too (GRDB sets its WAL default, NORMAL, which
        // holds only through a crash of the process). Only the writer connection commits, and it lives
        // as long as the pool. Group commit spreads the sync over concurrent writes.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.writerBackstopPages)")
        }
        try SQLiteMigrations.migrator.migrate(pool)
        checkpointer = try WALCheckpointer(path: path)
    }

    /// A write whose loss to a power cut only repeats work that is safe to repeat (see
    /// `Store.recordAttempts`): committed without waiting for the WAL sync, which the next synced
    /// commit then covers. A crash of the process alone loses nothing either way.
    func repeatableWrite<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            let result = Result {
                var value: T?
                try db.inTransaction {
                    value = try updates(db)
                    return .commit
                }
                return value!
            }
            try db.execute(sql: "PRAGMA synchronous = FULL")
            return try result.get()
        }
    }

    public func backlog(now: Date) async throws -> BacklogStatistics {
        let now = now.timeIntervalSince1970
        return try await pool.read { db in
            try BacklogQuery.statistics(from: Row.fetchAll(db, sql: BacklogQuery.sql(now: "?"), arguments: [now, now, now]))
        }
    }

    public func checkReady() async throws {
        guard try await pool.read({ db in try SQLiteMigrations.migrator.hasCompletedMigrations(db) }) else {
            throw StoreNotReady(description: "the database lacks migrations of this build")
        }
    }

    // MARK: Tasks

    public func insert(_ batch: [TaskInsertion]) async throws -> [InsertOutcome] {
        let columns = try batch.map { try TaskColumns($0.task) }
        return try await pool.write { db in
            try zip(batch, columns).map { insertion, columns in try Self.insert(insertion, columns: columns, db: db) }
        }
    }

    private static func insert(_ insertion: TaskInsertion, columns: TaskColumns, db: Database) throws -> InsertOutcome {
        let task = insertion.task
        if let idempotency = insertion.idempotency {
            if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT fingerprint, task_id FROM idempotency_keys WHERE client_id = ? AND key = ?"),
                                          arguments: [task.clientID, idempotency.key]) {
                return row["fingerprint"] == idempotency.fingerprint ? .replayed(taskID: row["task_id"]) : .conflict
            }
            try db.cachedStatement(sql: "INSERT INTO idempotency_keys (client_id, key, fingerprint, task_id, created_at) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [task.clientID, idempotency.key, idempotency.fingerprint, task.id, task.createdAt.timeIntervalSince1970])
        }
        do {
            try db.cachedStatement(sql: """
                INSERT INTO tasks (id, client_id, request_json, callback_url, metadata_json, callback_events, state, created_at, next_run_at,
                                   failures, trace_parent)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [task.id, task.clientID, columns.requestJSON, StoredCallback.text(task.callbackURL), columns.metadataJSON, columns.callbackEventsJSON,
                                 task.state.rawValue, task.createdAt.timeIntervalSince1970,
                                 task.nextRunAt?.timeIntervalSince1970, task.failures, task.traceParent])
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError.duplicateTask(task.id)
        }
        return .created
    }

    public func task(id: String, clientID: String?) async throws -> RelayTask? {
        try await pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM tasks WHERE id = ? AND (? IS NULL OR client_id = ?)"),
                arguments: [id, clientID, clientID])
                .map(RowMapping.task)
        }
    }

    public func tasks(_ query: TaskQuery) async throws -> [RelayTask] {
        try await pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM tasks
                WHERE (:state IS NULL OR state = :state) AND (:client IS NULL OR client_id = :client)
                  AND (:before IS NULL OR created_at < :before OR (created_at = :before AND id < :beforeID))
                ORDER BY created_at DESC, id DESC LIMIT :limit
                """), arguments: ["state": query.state?.rawValue, "client": query.clientID,
                                 "before": query.before?.createdAt.timeIntervalSince1970, "beforeID": query.before?.id,
                                 "limit": query.limit]).map(RowMapping.task)
        }
    }

    /// What each claim selects (`:now`, `:limit`, and for deliveries `:excluded`): one text for the
    /// claim and for `explainClaims`, so the plan shown is the plan used.
    static func candidates(_ work: TaskWork) -> String {
        switch work {
        case .submission:
            // Two index ranges on (state, next_run_at), each cut to the limit in due order before they are
            // merged: a single ORDER BY over the union would sort the whole backlog of queued tasks.
            """
            SELECT id, next_run_at FROM (
                SELECT * FROM (
                    SELECT id, next_run_at FROM tasks
                    WHERE state = 'queued' AND next_run_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at < :now)
                    ORDER BY next_run_at LIMIT :limit)
                UNION ALL
                SELECT * FROM (
                    SELECT id, next_run_at FROM tasks WHERE state = 'submitting' AND lease_expires_at < :now
                    ORDER BY next_run_at LIMIT :limit))
            ORDER BY next_run_at LIMIT :limit
            """
        case .poll:
            """
            SELECT id, next_run_at FROM tasks
            WHERE state = 'running' AND next_run_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at < :now)
            ORDER BY next_run_at LIMIT :limit
            """
        }
    }

    static let deliveryCandidates = """
        SELECT e.id FROM events e
        WHERE e.state = 'pending' AND e.next_attempt_at <= :now
          AND (e.lease_expires_at IS NULL OR e.lease_expires_at < :now)
          AND e.destination NOT IN (SELECT value FROM json_each(:excluded))
          AND NOT EXISTS (SELECT 1 FROM events p WHERE p.task_id = e.task_id AND p.seq < e.seq AND p.state = 'pending')
        ORDER BY e.next_attempt_at LIMIT :limit
        """

    /// The statements that claim work, as `claimTasks` and `claimDeliveries` run them.
    static func claimStatement(_ work: TaskWork) -> String {
        """
        UPDATE tasks SET lease_owner = :owner, lease_expires_at = :expires
        WHERE id IN (SELECT id FROM (\(candidates(work))))
        RETURNING *
        """
    }

    static let deliveryClaimStatement = """
        UPDATE events SET lease_owner = :owner, lease_expires_at = :expires
        WHERE id IN (\(deliveryCandidates))
        RETURNING id, task_id, type, payload, callback_url, destination, client_id, attempts, next_attempt_at, trace_parent
        """

    /// The plan of each claim statement as it runs (the plan of the bare candidate query can differ:
    /// inside the statement, SQLite may sort where the bare query merges).
    public func explainClaims(now: Date) async throws -> [ClaimPlan] {
        let arguments: StatementArguments = ["now": now.timeIntervalSince1970, "limit": 32, "excluded": "[]", "owner": "explain", "expires": 0]
        return try await pool.read { db in
            try [("submission", Self.claimStatement(.submission)), ("poll", Self.claimStatement(.poll)), ("delivery", Self.deliveryClaimStatement)]
                .map { name, sql in
                    let steps = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
                    return ClaimPlan(claim: name, plan: steps.joined(separator: "; "))
                }
        }
    }

    public func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease) async throws -> [RelayTask] {
        try await repeatableWrite { db in
            try Row.fetchAll(db.cachedStatement(sql: Self.claimStatement(work)), arguments: ["now": now.timeIntervalSince1970, "owner": lease.owner,
                                 "expires": lease.expiresAt.timeIntervalSince1970, "limit": limit])
                .map(RowMapping.task)
                .sorted { ($0.nextRunAt ?? .distantPast) < ($1.nextRunAt ?? .distantPast) }
        }
    }

    public func nextPollDue(now: Date) async throws -> Date? {
        try await pool.read { db in
            try Double.fetchOne(db.cachedStatement(sql: """
                SELECT next_run_at FROM tasks WHERE state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < ?)
                ORDER BY next_run_at LIMIT 1
                """), arguments: [now.timeIntervalSince1970]).map(Date.init(timeIntervalSince1970:))
        }
    }

    public func save(_ batch: [TaskTransition]) async throws -> [Bool] {
        let columns = try batch.map { try TaskColumns($0.task) }
        return try await pool.write { db in
            try zip(batch, columns).map { transition, columns in try Self.save(transition, columns: columns, db: db) }
        }
    }

    private static func save(_ transition: TaskTransition, columns: TaskColumns, db: Database) throws -> Bool {
        let (task, lease, keepLease) = (transition.task, transition.lease, transition.keepLease)
        try db.cachedStatement(sql: """
            UPDATE tasks SET state = ?, upstream_task_id = ?, submission_answer = ?, upstream_json = ?, error_code = ?, error_message = ?,
                submitted_at = ?, completed_at = ?, next_run_at = ?, failures = ?,
                lease_owner = ?, lease_expires_at = ?
            WHERE id = ? AND lease_owner = ?
            """).execute(arguments: [task.state.rawValue, task.upstreamTaskID, task.submissionAnswer, columns.upstreamJSON,
                             task.error?.code, task.error?.message,
                             task.submittedAt?.timeIntervalSince1970, task.completedAt?.timeIntervalSince1970,
                             task.nextRunAt?.timeIntervalSince1970, task.failures,
                             keepLease ? lease.owner : nil, keepLease ? lease.expiresAt.timeIntervalSince1970 : nil,
                             task.id, lease.owner])
        guard db.changesCount == 1 else { return false }
        guard let event = transition.event else { return true }
        try db.cachedStatement(sql: """
            INSERT INTO events (id, task_id, seq, type, payload, callback_url, destination, client_id, created_at, state, next_attempt_at,
                                trace_parent)
            VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE task_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [event.id, task.id, task.id, event.type.rawValue, event.payload, StoredCallback.text(task.callbackURL),
                             StoredCallback.destination(task.callbackURL), task.clientID, event.createdAt.timeIntervalSince1970,
                             event.initialState.rawValue, event.firstAttemptAt, task.traceParent])
        return true
    }

    // MARK: Deliveries

    public func claimDeliveries(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> [PendingDelivery] {
        let excluded = try TaskColumns.text(destinations.sorted())
        return try await repeatableWrite { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: Self.deliveryClaimStatement), arguments: ["now": now.timeIntervalSince1970, "owner": lease.owner, "excluded": excluded,
                                 "expires": lease.expiresAt.timeIntervalSince1970, "limit": limit])
            // A batch's events mostly belong to few clients: look each client's secrets up once.
            var secretsByClient: [String: Row?] = [:]
            return try rows.sorted { ($0["next_attempt_at"] as Double? ?? 0) < ($1["next_attempt_at"] as Double? ?? 0) }.map { row in
                let clientID: String = row["client_id"]
                if secretsByClient[clientID] == nil {
                    secretsByClient[clientID] = try Row.fetchOne(db.cachedStatement(sql: """
                        SELECT signing_secret, CASE WHEN previous_secret_expires_at > ? THEN previous_secret END AS previous
                        FROM clients WHERE id = ?
                        """), arguments: [now.timeIntervalSince1970, clientID])
                }
                return try RowMapping.pendingDelivery(row, secrets: secretsByClient[clientID] ?? nil)
            }
        }
    }

    public func releaseDelivery(eventID: String, lease: Lease) async throws {
        try await repeatableWrite { db in
            try db.cachedStatement(sql: "UPDATE events SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?")
                .execute(arguments: [eventID, lease.owner])
        }
    }

    public func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool] {
        try await repeatableWrite { db in
            try records.map { record in
                let (attempt, update) = (record.attempt, record.eventUpdate)
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_status_code = ?, last_error = ?,
                        delivered_at = ?, lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = ? AND lease_owner = ?
                    """).execute(arguments: [update.state.rawValue, update.nextAttemptAt?.timeIntervalSince1970, attempt.statusCode, attempt.error,
                                     update.deliveredAt?.timeIntervalSince1970, attempt.eventID, record.lease.owner])
                guard db.changesCount == 1 else { return false }
                try db.cachedStatement(sql: """
                    INSERT INTO delivery_attempts (event_id, attempted_at, status_code, latency, error, response_excerpt)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [attempt.eventID, attempt.attemptedAt.timeIntervalSince1970, attempt.statusCode,
                                     attempt.latency, attempt.error, attempt.responseExcerpt])
                return true
            }
        }
    }

    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM events
                WHERE task_id = ? AND state <> 'unsubscribed' ORDER BY seq DESC LIMIT 1
                """), arguments: [taskID]).map(RowMapping.callbackSummary)
        }
    }

    public func deliveryLog(taskID: String, clientID: String?) async throws -> [DeliveryRecord]? {
        try await pool.read { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM tasks WHERE id = ? AND (? IS NULL OR client_id = ?)"),
                                    arguments: [taskID, clientID, clientID]) != nil else {
                return nil
            }
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM events WHERE task_id = ? AND state <> 'unsubscribed' ORDER BY seq"),
                                    arguments: [taskID]).map { row in
                var record = try RowMapping.delivery(row)
                record.attemptLog = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT * FROM delivery_attempts WHERE event_id = ? ORDER BY attempted_at, id
                    """), arguments: [record.eventID]).map(RowMapping.attempt)
                return record
            }
        }
    }

    public func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent] {
        try await pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT id, task_id, seq, type, payload FROM events WHERE task_id = ? AND seq > ? ORDER BY seq"),
                             arguments: [taskID, sequence]).map(RowMapping.streamEvent)
        }
    }

    public func eventSequence(eventID: String, taskID: String) async throws -> Int? {
        try await pool.read { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT seq FROM events WHERE id = ? AND task_id = ?"), arguments: [eventID, taskID])
        }
    }

    public func latestEventSequences(taskIDs: [String]) async throws -> [String: Int] {
        let ids = try TaskColumns.text(taskIDs)
        return try await pool.read { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT task_id, MAX(seq) AS seq FROM events WHERE task_id IN (SELECT value FROM json_each(?)) GROUP BY task_id
                """), arguments: [ids])
            return try Dictionary(rows.map { (try $0.text("task_id"), try $0.integer("seq")) }, uniquingKeysWith: max)
        }
    }

    public func deliveries(clientID: String?, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        try await pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM events WHERE state = ? AND (? IS NULL OR client_id = ?) ORDER BY created_at DESC, id DESC LIMIT ?
                """), arguments: [state.rawValue, clientID, clientID, limit]).map(RowMapping.delivery)
        }
    }

    public func redeliver(taskID: String, clientID: String?, eventID: String?, now: Date) async throws -> DeliveryRecord? {
        try await pool.write { db in
            guard let id = try String.fetchOne(db.cachedStatement(sql: """
                SELECT e.id FROM events e JOIN tasks t ON t.id = e.task_id
                WHERE e.task_id = ? AND e.state <> 'unsubscribed' AND (? IS NULL OR t.client_id = ?) AND (? IS NULL OR e.id = ?)
                ORDER BY e.seq DESC LIMIT 1
                """), arguments: [taskID, clientID, clientID, eventID, eventID])
            else { return nil }
            try db.cachedStatement(sql: """
                UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = ?, delivered_at = NULL,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE id = ?
                """).execute(arguments: [now.timeIntervalSince1970, id])
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM events WHERE id = ?"), arguments: [id]).map(RowMapping.delivery)
        }
    }

    public func pruneAttempts(before cutoff: Date) async throws -> Int {
        try await pool.write { db in
            try db.cachedStatement(sql: "DELETE FROM delivery_attempts WHERE attempted_at < ?").execute(arguments: [cutoff.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func pruneIdempotencyKeys(before cutoff: Date) async throws -> Int {
        try await pool.write { db in
            try db.cachedStatement(sql: "DELETE FROM idempotency_keys WHERE created_at < ?").execute(arguments: [cutoff.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func resubmit(taskID: String, now: Date) async throws -> Bool {
        try await pool.write { db in
            try db.cachedStatement(sql: """
                UPDATE tasks SET state = 'queued', upstream_task_id = NULL, upstream_json = NULL, error_code = NULL, error_message = NULL,
                    submitted_at = NULL, completed_at = NULL, next_run_at = ?, failures = 0, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = ? AND state = 'failed'
                """).execute(arguments: [now.timeIntervalSince1970, taskID])
            return db.changesCount == 1
        }
    }

    public func releaseLeases(ownerPrefix prefix: String) async throws {
        try await repeatableWrite { db in
            // A `submitting` task keeps its lease: only its expiry may decide the outcome is unknown.
            try db.cachedStatement(sql: """
                UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL
                WHERE substr(lease_owner, 1, length(:prefix)) = :prefix AND state <> 'submitting'
                """).execute(arguments: ["prefix": prefix])
            try db.cachedStatement(sql: """
                UPDATE events SET lease_owner = NULL, lease_expires_at = NULL WHERE substr(lease_owner, 1, length(:prefix)) = :prefix
                """).execute(arguments: ["prefix": prefix])
        }
    }

    public func recordLateSubmission(taskID: String, _ submission: UpstreamSubmission) async throws -> Bool {
        try await pool.write { db in
            try db.cachedStatement(sql: """
                UPDATE tasks SET upstream_task_id = ?, submission_answer = ? WHERE id = ? AND upstream_task_id IS NULL
                """).execute(arguments: [submission.taskID, submission.answer, taskID])
            return db.changesCount == 1
        }
    }

    // MARK: Clients

    public func client(keyHash: String) async throws -> Client? {
        try await pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT id, name, signing_secret FROM clients WHERE key_hash = ? AND revoked_at IS NULL"),
                             arguments: [keyHash])
                .map(RowMapping.client)
        }
    }

    public func upsertClient(_ client: Client, keyHash: String, now: Date) async throws {
        try await pool.write { db in
            try db.cachedStatement(sql: """
                INSERT INTO clients (id, name, key_hash, signing_secret, created_at) VALUES (:id, :name, :hash, :secret, :now)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, key_hash = excluded.key_hash, revoked_at = NULL,
                    previous_secret = CASE WHEN signing_secret <> excluded.signing_secret THEN signing_secret ELSE previous_secret END,
                    previous_secret_expires_at = CASE WHEN signing_secret <> excluded.signing_secret THEN :graceEnd
                                                      ELSE previous_secret_expires_at END,
                    signing_secret = excluded.signing_secret
                """).execute(arguments: ["id": client.id, "name": client.name, "hash": keyHash, "secret": client.signingSecret,
                                 "now": now.timeIntervalSince1970, "graceEnd": now.addingTimeInterval(Client.replacedSecretGrace).timeIntervalSince1970])
        }
    }

    public func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int {
        let kept = try TaskColumns.text(keep.sorted())
        return try await pool.write { db in
            try db.cachedStatement(sql: """
                UPDATE clients SET revoked_at = :at
                WHERE substr(id, 1, length(:prefix)) = :prefix AND revoked_at IS NULL AND id NOT IN (SELECT value FROM json_each(:kept))
                """).execute(arguments: ["at": date.timeIntervalSince1970, "prefix": prefix, "kept": kept])
            return db.changesCount
        }
    }

    /// GRDB closes the pool when the store is released.
    public func close() {
        checkpointer.stop()
    }

    public func clientCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM clients WHERE revoked_at IS NULL") ?? 0 }
    }

    public func sharedSecret(named name: String, candidate: String) async throws -> String {
        try await pool.write { db in
            try db.cachedStatement(sql: "INSERT INTO shared_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .execute(arguments: [name, candidate])
            return try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM shared_secrets WHERE name = ?"), arguments: [name]) ?? candidate
        }
    }

    public func clients() async throws -> [ClientRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM clients ORDER BY created_at, id").map(RowMapping.clientRecord)
        }
    }

    public func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool {
        try await pool.write { db in
            try db.cachedStatement(sql: """
                UPDATE clients SET previous_secret = signing_secret, previous_secret_expires_at = ?, signing_secret = ?
                WHERE id = ? AND revoked_at IS NULL
                """).execute(arguments: [previousValidUntil.timeIntervalSince1970, newSecret, clientID])
            return db.changesCount == 1
        }
    }

    public func revokeClient(id: String, at date: Date) async throws -> Bool {
        try await pool.write { db in
            try db.cachedStatement(sql: "UPDATE clients SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .execute(arguments: [date.timeIntervalSince1970, id])
            return db.changesCount == 1
        }
    }
}

extension Row: StoredRow {
    func optionalText(_ column: String) -> String? { self[column] }
    func optionalReal(_ column: String) -> Double? { self[column] }
    func optionalInteger(_ column: String) -> Int? { self[column] }
    func optionalBlob(_ column: String) -> Data? { self[column] }
}
