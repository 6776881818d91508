import Foundation

/// Housekeeping statements, the same on both engines, and the maintenance reads made of them. Readiness
/// and claim plans are each engine's own.
enum MaintenanceStatements {
    /// A row per task state with its count, then one row per stage with its oldest due time as of 1
    /// (each an index range on `(state, due time)`).
    static let backlog = Statement("""
        SELECT state AS kind, count(*) AS count, CAST(NULL AS DOUBLE PRECISION) AS oldest FROM tasks GROUP BY state
        UNION ALL SELECT 'submission', 0, min(next_run_at) FROM tasks WHERE state = 'queued' AND next_run_at <= $1
        UNION ALL SELECT 'poll', 0, min(next_run_at) FROM tasks WHERE state = 'running' AND next_run_at <= $1
        UNION ALL SELECT 'delivery', 0, min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1
        """)

    static let pruneAttempts = Statement("DELETE FROM delivery_attempts WHERE attempted_at < $1 RETURNING id")
    static let pruneIdempotencyKeys = Statement("DELETE FROM idempotency_keys WHERE created_at < $1 RETURNING key")

    static func backlog(from rows: [any StoredRow]) throws -> BacklogStatistics {
        var statistics = BacklogStatistics()
        for row in rows {
            let kind = try row.text("kind")
            switch kind {
            case "submission": statistics.oldestDueSubmission = try row.optionalDate("oldest")
            case "poll": statistics.oldestDuePoll = try row.optionalDate("oldest")
            case "delivery": statistics.oldestDueDelivery = try row.optionalDate("oldest")
            default:
                if let state = TaskState(rawValue: kind) { statistics.tasksByState[state] = try row.integer("count") }
            }
        }
        return statistics
    }
}

extension StoreMaintenance where Self: StatementRunner {
    public func backlog(now: Date) async throws -> BacklogStatistics {
        try await run([BoundStatement(MaintenanceStatements.backlog, [now])], access: .read) { try MaintenanceStatements.backlog(from: $0[0]) }
    }

    public func activity(from start: Date, slot: TimeInterval, count: Int) async throws -> ActivityReport {
        try await run([BoundStatement(ActivityQuery.statement, [start, slot, start.addingTimeInterval(slot * Double(count))])], access: .read) {
            try ActivityQuery.report(from: $0[0], start: start, slot: slot, count: count)
        }
    }

    public func pruneAttempts(before cutoff: Date) async throws -> Int {
        try await changed(MaintenanceStatements.pruneAttempts, [cutoff])
    }

    public func pruneIdempotencyKeys(before cutoff: Date) async throws -> Int {
        try await changed(MaintenanceStatements.pruneIdempotencyKeys, [cutoff])
    }
}
