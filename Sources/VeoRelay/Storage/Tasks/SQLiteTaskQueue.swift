import Foundation
import GRDB

extension SQLiteStore: TaskQueue {
    public func insert(_ batch: [TaskInsertion]) async throws -> [InsertOutcome] {
        let columns = try batch.map { try TaskColumns($0.task) }
        return try await write { db in
            try zip(batch, columns).map { insertion, columns in try Self.insert(insertion, columns: columns, db: db) }
        }
    }

    /// SQLite runs one write transaction at a time, so the budget read here is the budget counted.
    private static func insert(_ insertion: TaskInsertion, columns: TaskColumns, db: Database) throws -> InsertOutcome {
        let task = insertion.task
        if let idempotency = insertion.idempotency, let row = try db.first(TaskStatements.idempotencyKey, [task.clientID, idempotency.key]) {
            return row["fingerprint"] == idempotency.fingerprint ? .replayed(taskID: row["task_id"]) : .conflict
        }
        var remaining: [BudgetLimit: Int] = [:]
        var alerts: [BudgetAlert] = []
        if let budget = try budget(of: task.clientID, db: db) {
            switch BudgetAdmission(task, budget: budget, beside: try use(of: task.clientID, at: task.createdAt, db: db)) {
            case .refused(let refusal): return .overBudget(refusal)
            case .admitted(let left, let crossed): (remaining, alerts) = (left, crossed)
            }
        }
        if let idempotency = insertion.idempotency {
            try db.rows(TaskStatements.insertIdempotencyKey, [task.clientID, idempotency.key, idempotency.fingerprint, task.id, task.createdAt])
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
        try record([.accepted(task)], db: db)
        for alert in alerts { try writeClientEvent(alert.event(at: task.createdAt), clientID: task.clientID, db: db) }
        return .created(remaining: remaining)
    }

    /// What each claim selects (`:now`, `:limit`; for submissions `:silentSince` and the key's `:key`,
    /// `:keyClient` and `:capacity`, for deliveries `:excluded`): one text for the claim and for
    /// `explainClaims`, so the plan shown is the plan used.
    static func candidates(_ work: TaskWork) -> String {
        switch work {
        case .submission:
            // Two index ranges on (state, next_run_at), each cut to the limit in due order before they are
            // merged: a single ORDER BY over the union would sort the whole backlog of queued tasks. The
            // global pause is a condition on no row, tested once: within the row filter it let a paused
            // relay walk its whole backlog at every claim.
            """
            SELECT id, next_run_at FROM (
                SELECT * FROM (
                    SELECT id, next_run_at FROM tasks
                    WHERE state = 'queued' AND next_run_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at < :now)
                      AND NOT EXISTS (SELECT 1 FROM submission_pauses WHERE scope = '*') AND \(TaskStatements.notHeld(key: ":key"))
                      AND tasks.client_id NOT IN (SELECT scope FROM submission_pauses) AND \(TaskStatements.carried(owner: ":keyClient"))
                    ORDER BY next_run_at LIMIT :capacity)
                UNION ALL
                SELECT * FROM (
                    SELECT id, next_run_at FROM tasks
                    WHERE state = 'submitting' AND lease_expires_at < :now AND NOT \(InstanceStatements.ownerAlive(silentSince: ":silentSince"))
                    ORDER BY next_run_at LIMIT :limit))
            ORDER BY next_run_at LIMIT :limit
            """
        case .accountProbe:
            """
            SELECT id, next_run_at FROM tasks
            WHERE state = 'queued' AND next_run_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at < :now)
              AND NOT EXISTS (SELECT 1 FROM submission_pauses WHERE scope = '*') AND tasks.client_id NOT IN (SELECT scope FROM submission_pauses)
              AND \(TaskStatements.carried(owner: ":keyClient"))
            ORDER BY next_run_at LIMIT :capacity
            """
        case .poll, .store:
            """
            SELECT id, next_run_at FROM tasks
            WHERE state = '\(work.state.rawValue)' AND next_run_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at < :now)
            ORDER BY next_run_at LIMIT :limit
            """
        }
    }

    /// The statements that claim work, as `claimTasks` and `claimDeliveries` run them.
    static func claimStatement(_ work: TaskWork) -> String {
        """
        UPDATE tasks SET lease_owner = \(TaskStatements.claimedOwner(":owner")), lease_expires_at = :expires\(work.share == nil ? "" : TaskStatements.claimedKey(":key"))
        WHERE id IN (SELECT id FROM (\(candidates(work))))
        RETURNING *
        """
    }

    public func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease, ownersSilentSince: Date) async throws -> [RelayTask] {
        var arguments: StatementArguments = ["now": now.timeIntervalSince1970, "owner": lease.owner, "expires": lease.expiresAt.timeIntervalSince1970,
                                             "limit": limit]
        if case .submission = work { arguments += ["silentSince": ownersSilentSince.timeIntervalSince1970] }
        if let share = work.share { arguments += ["key": share.key, "keyClient": share.clientID] }
        return try await repeatableWrite { [arguments] db in
            var arguments = arguments
            if let share = work.share {
                // One writer at a time: what is counted here is what is in flight when the claim writes.
                let inFlight: Int = try share.maxInFlight == nil ? 0 : db.first(AccountStatements.keyInFlight, [share.key, now])?["tasks"] ?? 0
                arguments += ["capacity": share.capacity(limit: limit, inFlight: inFlight)]
            }
            return try Row.fetchAll(db.cachedStatement(sql: Self.claimStatement(work)), arguments: arguments)
                .map(RowMapping.task)
                .sorted { ($0.nextRunAt ?? .distantPast) < ($1.nextRunAt ?? .distantPast) }
        }
    }

    public func save(_ batch: [TaskTransition]) async throws -> [Bool] {
        let columns = try batch.map { try TaskColumns($0.task) }
        return try await write { db in
            try zip(batch, columns).map { transition, columns in try Self.save(transition, columns: columns, db: db) }
        }
    }

    private static func save(_ transition: TaskTransition, columns: TaskColumns, db: Database) throws -> Bool {
        let (task, lease, keepLease) = (transition.task, transition.lease, transition.keepLease)
        try db.cachedStatement(sql: """
            UPDATE tasks SET state = ?, upstream_task_id = ?, submission_answer = ?, upstream_json = ?, error_code = ?, error_message = ?,
                submitted_at = ?, completed_at = ?, next_run_at = ?, failures = ?, video_copies_json = ?,
                lease_owner = ?, lease_expires_at = ?
            WHERE id = ? AND lease_owner = ?
            """).execute(arguments: [task.state.rawValue, task.upstreamTaskID, task.submissionAnswer, columns.upstreamJSON,
                             task.error?.code, task.error?.message,
                             task.submittedAt?.timeIntervalSince1970, task.completedAt?.timeIntervalSince1970,
                             task.nextRunAt?.timeIntervalSince1970, task.failures, columns.videoCopiesJSON,
                             keepLease ? lease.owner : nil, keepLease ? lease.expiresAt.timeIntervalSince1970 : nil,
                             task.id, lease.owner])
        guard db.changesCount == 1 else { return false }
        try record(UsageChange.ends(task), db: db)
        guard let event = transition.event else { return true }
        try writeEvent(event, of: task, db: db)
        return true
    }

    public func resubmit(taskID: String, now: Date) async throws -> Bool {
        try await write { db in
            guard let failed = try db.rows(TaskStatements.resubmit, [now, taskID]).first else { return false }
            try Self.record([.resubmitted(try RowMapping.task(failed))], db: db)
            return true
        }
    }

    public func cancel(_ task: RelayTask, event: NewEvent) async throws -> Bool {
        let columns = try TaskColumns(task)
        return try await write { db in
            guard try !db.rows(TaskStatements.takeQueued, [cancellationLease.owner, task.id]).isEmpty else { return false }
            return try Self.save(TaskTransition(task, lease: cancellationLease, keepLease: false, event: event), columns: columns, db: db)
        }
    }
}
