import Foundation

/// The task queue's statements that are the same on both engines, and the queue's reads and control
/// writes made of them. Claims and batched transitions are each engine's own (`SQLiteTaskQueue`,
/// `PostgresTaskQueue`).
enum TaskStatements {
    /// The lease owner a claim writes, `owner` its placeholder: an abandoned `submitting` task is taken
    /// under a recovery lease (`Lease.recovering`), which names no incarnation. Were the claim's answer
    /// lost, the task would otherwise look owned by the live claimer, which never sends it, and so
    /// stay `submitting` for as long as the claimer runs.
    static func claimedOwner(_ owner: String) -> String {
        "CASE WHEN state = 'submitting' THEN '\(Lease.recoveryPrefix)' || \(owner) ELSE \(owner) END"
    }

    /// The queued tasks a key may carry (`tasks` in scope, `owner` the placeholder of the key's client):
    /// its client's, or, for a shared key, those of every client without a key of its own.
    static func carried(owner: String) -> String {
        """
        CASE WHEN CAST(\(owner) AS TEXT) IS NULL THEN tasks.client_id NOT IN (SELECT client_id FROM upstream_keys WHERE client_id IS NOT NULL)
             ELSE tasks.client_id = \(owner) END
        """
    }

    /// No hold on the key (`key` its placeholder).
    static func notHeld(key: String) -> String {
        "NOT EXISTS (SELECT 1 FROM upstream_accounts WHERE key_id = \(key))"
    }

    /// A submission claim names the key a queued task is to be sent with; an abandoned `submitting`
    /// task keeps the key it was sent with.
    static func claimedKey(_ key: String) -> String {
        ", upstream_key = CASE WHEN state = 'queued' THEN \(key) ELSE upstream_key END"
    }

    /// 1 id, 2 scope.
    static let byID = Statement("SELECT * FROM tasks WHERE id = $1 AND \(scoped("client_id", 2))")

    /// 1 state or NULL, 2 scope, 3 search or NULL, 4 its LIKE pattern, 5 and 6 the cursor's time and id or NULL.
    static let list = Statement("""
        SELECT * FROM tasks
        WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) AND \(scoped("client_id", 2))
          AND (CAST($3 AS TEXT) IS NULL OR id = $3 OR upstream_task_id = $3 OR metadata_json LIKE $4 ESCAPE '\\')
          AND (CAST($5 AS DOUBLE PRECISION) IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6))
        ORDER BY created_at DESC, id DESC LIMIT $7
        """)

    static let nextPollDue = Statement("""
        SELECT next_run_at FROM tasks WHERE state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < $1)
        ORDER BY next_run_at LIMIT 1
        """)

    static let idempotencyKey = Statement("SELECT fingerprint, task_id FROM idempotency_keys WHERE client_id = $1 AND key = $2")

    /// 1 client, 2 key, 3 fingerprint, 4 task, 5 when; nothing if the key is taken.
    static let insertIdempotencyKey = Statement("""
        INSERT INTO idempotency_keys (client_id, key, fingerprint, task_id, created_at) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (client_id, key) DO NOTHING RETURNING task_id
        """)

    static let forgetIdempotencyKey = Statement("DELETE FROM idempotency_keys WHERE client_id = $1 AND key = $2")

    /// 1 now, 2 task.
    static let resubmit = Statement("""
        UPDATE tasks SET state = 'queued', upstream_task_id = NULL, upstream_key = NULL, upstream_json = NULL, error_code = NULL, error_message = NULL,
            submitted_at = NULL, completed_at = NULL, next_run_at = $1, failures = 0, lease_owner = NULL, lease_expires_at = NULL
        WHERE id = $2 AND state = 'failed' RETURNING *
        """)

    /// 1 upstream id, 2 answer, 3 task.
    static let lateSubmission = Statement("""
        UPDATE tasks SET upstream_task_id = $1, submission_answer = $2 WHERE id = $3 AND upstream_task_id IS NULL RETURNING id
        """)

    static let releaseLeases = Statement("""
        UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL
        WHERE substr(lease_owner, 1, length($1)) = $1 AND state <> 'submitting'
        """)

    /// A cancel takes a queued task from whoever claimed it (1 the cancel's owner, 2 task).
    static let takeQueued = Statement("UPDATE tasks SET lease_owner = $1 WHERE id = $2 AND state = 'queued' RETURNING id")

    static let pause = Statement("INSERT INTO submission_pauses (scope, paused_at) VALUES ($1, $2) ON CONFLICT (scope) DO NOTHING")
    static let resume = Statement("DELETE FROM submission_pauses WHERE scope = $1 RETURNING scope")
    static let pauses = Statement("SELECT scope, paused_at FROM submission_pauses ORDER BY paused_at, scope")

    static func listArguments(_ query: TaskQuery) -> [any SQLBindable] {
        [query.state?.rawValue, query.scope, query.search, query.metadataPattern, query.before?.createdAt, query.before?.id, query.limit]
    }
}

extension TaskQueue where Self: StatementRunner {
    public func task(id: String, scope: ClientScope) async throws -> RelayTask? {
        try await first(TaskStatements.byID, [id, scope]) { try RowMapping.task($0) }
    }

    public func tasks(_ query: TaskQuery) async throws -> [RelayTask] {
        try await rows(TaskStatements.list, TaskStatements.listArguments(query)) { try RowMapping.task($0) }
    }

    public func nextPollDue(now: Date) async throws -> Date? {
        try await first(TaskStatements.nextPollDue, [now]) { try $0.optionalDate("next_run_at") } ?? nil
    }

    public func recordLateSubmission(taskID: String, _ submission: UpstreamSubmission) async throws -> Bool {
        try await changed(TaskStatements.lateSubmission, [submission.taskID, submission.answer, taskID]) == 1
    }

    public func releaseTaskLeases(ownerPrefix prefix: String) async throws {
        try await changed(TaskStatements.releaseLeases, [prefix], access: .repeatableWrite)
    }

    public func pauseSubmissions(_ scope: ClientScope, at date: Date) async throws {
        try await changed(TaskStatements.pause, [scope, date])
    }

    public func resumeSubmissions(_ scope: ClientScope) async throws -> Bool {
        try await changed(TaskStatements.resume, [scope]) == 1
    }

    public func submissionPauses() async throws -> [SubmissionPause] {
        try await rows(TaskStatements.pauses) { try RowMapping.submissionPause($0) }
    }
}
