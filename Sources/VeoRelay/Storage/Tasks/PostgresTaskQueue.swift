import Foundation
import PostgresNIO

extension PostgresStore: TaskQueue {
    public func insert(_ batch: [TaskInsertion]) async throws -> [InsertOutcome] {
        let columns = try batch.map { try TaskColumns($0.task) }
        let clientIDs = Set(batch.map(\.task.clientID))
        // Without idempotency keys or budgets (most intake batches, every bulk fill): one statement for
        // the tasks and one for their usage. A duplicate id fails it whole; row by row below then names
        // the duplicate.
        if batch.allSatisfy({ $0.idempotency == nil }) {
            do {
                let outcomes = try await transaction { connection -> [InsertOutcome]? in
                    guard try await self.lockBudgets(of: clientIDs, on: connection).isEmpty else { return nil }
                    try await self.insertTasks(zip(batch, columns).map { NewTaskRow($0.task, columns: $1) }, on: connection)
                    try await self.record(batch.map { .accepted($0.task) }, on: connection)
                    return batch.map { _ in .created }
                }
                if let outcomes { return outcomes }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {}
        }
        return try await transaction { connection in
            let budgets = try await self.lockBudgets(of: clientIDs, on: connection)
            var outcomes: [InsertOutcome] = []
            for (insertion, columns) in zip(batch, columns) {
                outcomes.append(try await self.insert(insertion, columns: columns, budget: budgets[insertion.task.clientID], on: connection))
            }
            // Budgeted clients' tasks were counted as they were admitted; the rest together, last.
            try await self.record(zip(batch, outcomes).compactMap { insertion, outcome in
                guard case .created = outcome, budgets[insertion.task.clientID] == nil else { return nil }
                return .accepted(insertion.task)
            }, on: connection)
            return outcomes
        }
    }

    /// One task, under its client's locked budget if it has one (see `lockBudgets`): then it is counted
    /// at once, so the next task of the client in this transaction sees it.
    private func insert(_ insertion: TaskInsertion, columns: TaskColumns, budget: ClientBudget?,
                        on connection: PostgresConnection) async throws -> InsertOutcome {
        let task = insertion.task
        if let idempotency = insertion.idempotency {
            let inserted = try await rows(TaskStatements.insertIdempotencyKey,
                                          [task.clientID, idempotency.key, idempotency.fingerprint, task.id, task.createdAt], on: connection)
            if inserted.isEmpty {
                guard let existing = try await rows(TaskStatements.idempotencyKey, [task.clientID, idempotency.key], on: connection).first
                else { throw StoreError.missingValue("idempotency_keys") }
                return try existing.text("fingerprint") == idempotency.fingerprint ? .replayed(taskID: try existing.text("task_id")) : .conflict
            }
        }
        var remaining: [BudgetLimit: Int] = [:]
        var alerts: [BudgetAlert] = []
        if let budget {
            switch BudgetAdmission(task, budget: budget, beside: try await use(of: task.clientID, at: task.createdAt, on: connection)) {
            case .refused(let refusal):
                if let idempotency = insertion.idempotency {
                    try await rows(TaskStatements.forgetIdempotencyKey, [task.clientID, idempotency.key], on: connection)
                }
                return .overBudget(refusal)
            case .admitted(let left, let crossed): (remaining, alerts) = (left, crossed)
            }
        }
        do {
            try await insertTasks([NewTaskRow(task, columns: columns)], on: connection)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StoreError.duplicateTask(task.id)
        }
        if budget != nil { try await record([.accepted(task)], on: connection) }
        if !alerts.isEmpty {
            try await insertEvents(try alerts.map { NewEventRow(try $0.event(at: task.createdAt), clientID: task.clientID) }, on: connection)
        }
        return .created(remaining: remaining)
    }

    /// What each claim selects, with `$1` now and `$2` the limit (for submissions `$5` the oldest heartbeat
    /// that keeps an owner alive; for deliveries `$3` the excluded destinations). Submissions and probes
    /// bind the key, its client and the key's capacity last (`keyPlaceholders`).
    static func candidates(_ work: TaskWork) -> String {
        switch work {
        case .submission:
            // Two index ranges on (state, next_run_at), each locked and cut to the limit in due order
            // before they are merged: one OR'd condition would be a bitmap scan and a sort of the whole
            // backlog. (Row locks are not allowed in a UNION's branches; they are in a CTE.) The global
            // pause is its own condition on no row, a one-time filter, so a paused relay walks no backlog;
            // a client's pause is NOT IN (a hashed filter on the ordered index scan): as NOT EXISTS it is
            // planned as an anti-join, which reads and sorts every due task before the limit.
            """
            WITH queued AS (
                SELECT id, next_run_at FROM tasks
                WHERE state = 'queued' AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)
                  AND NOT EXISTS (SELECT 1 FROM submission_pauses WHERE scope = '*') AND \(TaskStatements.notHeld(key: "$6"))
                  AND tasks.client_id NOT IN (SELECT scope FROM submission_pauses) AND \(TaskStatements.carried(owner: "$7"))
                ORDER BY next_run_at LIMIT $8 FOR UPDATE SKIP LOCKED),
            abandoned AS (
                SELECT id, next_run_at FROM tasks
                WHERE state = 'submitting' AND lease_expires_at < $1 AND NOT \(InstanceStatements.ownerAlive(silentSince: "$5"))
                ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            SELECT id FROM (SELECT * FROM queued UNION ALL SELECT * FROM abandoned) due ORDER BY next_run_at LIMIT $2
            """
        case .accountProbe:
            """
            SELECT id FROM tasks
            WHERE state = 'queued' AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)
              AND NOT EXISTS (SELECT 1 FROM submission_pauses WHERE scope = '*') AND tasks.client_id NOT IN (SELECT scope FROM submission_pauses)
              AND \(TaskStatements.carried(owner: "$6"))
            ORDER BY next_run_at LIMIT $7 FOR UPDATE SKIP LOCKED
            """
        case .poll, .store:
            """
            SELECT id FROM tasks
            WHERE state = '\(work.state.rawValue)' AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)
            ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED
            """
        }
    }

    /// The statements that claim work, as `claimTasks` and `claimDeliveries` run them: each one
    /// statement, in one round trip.
    static func claimStatement(_ work: TaskWork) -> String {
        """
        UPDATE tasks SET lease_owner = \(TaskStatements.claimedOwner("$3")), lease_expires_at = $4\(keyPlaceholder(work).map(TaskStatements.claimedKey) ?? "")
        WHERE id IN (\(candidates(work))) AND \(commitsWithoutFlush) RETURNING *
        """
    }

    /// Where a submission's or probe's key is bound: after the heartbeat limit, or after the lease.
    static func keyPlaceholder(_ work: TaskWork) -> String? {
        switch work {
        case .submission: "$6"
        case .accountProbe: "$5"
        case .poll, .store: nil
        }
    }

    public func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease, ownersSilentSince: Date) async throws -> [RelayTask] {
        let silentSince: Double? = if case .submission = work { ownersSilentSince.timeIntervalSince1970 } else { nil }
        @Sendable func bindings(capacity: Int) -> PostgresBindings {
            var bindings = Self.bindings(now: now.timeIntervalSince1970, limit: limit, lease: lease, silentSince: silentSince)
            if let share = work.share {
                bindings.append(share.key)
                bindings.append(share.clientID)
                bindings.append(capacity)
            }
            return bindings
        }
        @Sendable func claim(on connection: PostgresConnection?, capacity: Int) async throws -> [PostgresRandomAccessRow] {
            switch work {
            case .submission: try await rows(PreparedClaim<SubmissionClaimText>(bindings: bindings(capacity: capacity)), on: connection)
            case .accountProbe: try await rows(PreparedClaim<AccountProbeClaimText>(bindings: bindings(capacity: capacity)), on: connection)
            case .poll: try await rows(PreparedClaim<PollClaimText>(bindings: bindings(capacity: capacity)), on: connection)
            case .store: try await rows(PreparedClaim<StoreClaimText>(bindings: bindings(capacity: capacity)), on: connection)
            }
        }
        let claimed: [PostgresRandomAccessRow]
        if let share = work.share, share.maxInFlight != nil {
            // A key with a limit: its name locked, so that relays claiming with it count one after another,
            // each seeing what the one before claimed (a fresh snapshot per statement).
            claimed = try await transaction(repeatable: true) { connection in
                _ = try await self.rows(AccountStatements.lockKey, [share.key], on: connection)
                let inFlight = try await self.rows(AccountStatements.keyInFlight, [share.key, now], on: connection).first?.integer("tasks") ?? 0
                return try await claim(on: connection, capacity: share.capacity(limit: limit, inFlight: inFlight))
            }
        } else {
            claimed = try await claim(on: nil, capacity: limit)
        }
        return try claimed
            .map(RowMapping.task)
            .sorted { ($0.nextRunAt ?? .distantPast) < ($1.nextRunAt ?? .distantPast) }
    }

    public func save(_ batch: [TaskTransition]) async throws -> [Bool] {
        let columns = try batch.map { try TaskColumns($0.task) }
        let ids = batch.map(\.task.id)
        if batch.allSatisfy({ $0.event == nil && UsageChange.ended($0.task) == nil }), Set(ids).count == ids.count {
            // Only the rows themselves (a `submitting` mark, a poll rescheduled): one statement is the
            // transaction, committed as durably, in one round trip instead of three.
            let written = try await saveTransitions(Array(zip(batch, columns)), on: nil)
            return ids.map(written.contains)
        }
        return try await transaction { connection in
            try await Self.writtenInWaves(ids) { wave in
                try await self.saveTransitions(wave.map { (batch[$0], columns[$0]) }, on: connection)
            }
        }
    }

    public func resubmit(taskID: String, now: Date) async throws -> Bool {
        try await transaction { connection in
            guard let failed = try await self.rows(TaskStatements.resubmit, [now, taskID], on: connection).first else { return false }
            try await self.record([.resubmitted(try RowMapping.task(failed))], on: connection)
            return true
        }
    }

    public func cancel(_ task: RelayTask, event: NewEvent) async throws -> Bool {
        let transition = (TaskTransition(task, lease: cancellationLease, keepLease: false, event: event), try TaskColumns(task))
        return try await transaction { connection in
            guard try await !self.rows(TaskStatements.takeQueued, [cancellationLease.owner, task.id], on: connection).isEmpty else { return false }
            return try await self.saveTransitions([transition], on: connection).contains(task.id)
        }
    }
}
