import Foundation

/// The outbox's statements that are the same on both engines, and the outbox's reads and control
/// writes made of them. Claims and batched attempt records are each engine's own (`SQLiteOutbox`,
/// `PostgresOutbox`).
enum OutboxStatements {
    /// What a claim reads of the endpoints its deliveries go to (1 now, 2 their ids).
    static let claimedEndpoints = Statement("""
        SELECT id, enabled, max_rate, next_send_at, signing_secret,
               CASE WHEN previous_secret_expires_at > $1 THEN previous_secret END AS previous
        FROM endpoints WHERE id IN LIST($2)
        """)

    /// Moves an endpoint's next free slot from 3 to 1 (2: its id), unless another claim moved it first.
    static let moveSlot = Statement("""
        UPDATE endpoints SET next_send_at = $1 WHERE id = $2 AND next_send_at IS NOT DISTINCT FROM CAST($3 AS DOUBLE PRECISION) RETURNING id
        """)

    /// A claimed delivery goes back, due at 1 (NULL: parked), if 4 still holds it (2 event, 3 endpoint).
    static let putBack = Statement("""
        UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $1
        WHERE event_id = $2 AND endpoint_id = $3 AND lease_owner = $4
        """)

    static let callbackSummary = Statement("""
        SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM deliveries WHERE task_id = $1 AND endpoint_id = ''
        ORDER BY seq DESC LIMIT 1
        """)

    static let callbackStates = Statement("""
        SELECT task_id, state FROM deliveries d
        WHERE task_id IN LIST($1) AND endpoint_id = ''
          AND seq = (SELECT MAX(seq) FROM deliveries l WHERE l.task_id = d.task_id AND l.endpoint_id = '')
        """)

    /// A task's deliveries and their attempts, if the scope (2) sees the task (1).
    static let taskVisible = Statement("SELECT id FROM tasks WHERE id = $1 AND \(scoped("client_id", 2))")
    static let taskDeliveries = Statement("""
        SELECT d.* FROM deliveries d JOIN tasks t ON t.id = d.task_id WHERE d.task_id = $1 AND \(scoped("t.client_id", 2))
        ORDER BY d.seq, d.endpoint_id
        """)
    static let taskAttempts = Statement("""
        SELECT a.* FROM delivery_attempts a JOIN deliveries d ON d.event_id = a.event_id AND d.endpoint_id = a.endpoint_id
            JOIN tasks t ON t.id = d.task_id
        WHERE d.task_id = $1 AND \(scoped("t.client_id", 2))
        ORDER BY a.attempted_at, a.id
        """)

    /// 1 state, 2 scope, 3 limit.
    static let byState = Statement("""
        SELECT * FROM deliveries WHERE state = $1 AND \(scoped("client_id", 2))
        ORDER BY created_at DESC, event_id DESC, endpoint_id LIMIT $3
        """)

    /// The latest of a task's events (1 task, 2 scope) that the filters allow (3 event id, 4 destination,
    /// each NULL for any) goes out again, due at 5, to that destination or to each of its destinations.
    static let redeliver = Statement("""
        UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $5, delivered_at = NULL,
            lease_owner = NULL, lease_expires_at = NULL
        WHERE event_id = (SELECT d.event_id FROM deliveries d JOIN tasks t ON t.id = d.task_id
                          WHERE d.task_id = $1 AND \(scoped("t.client_id", 2)) AND (CAST($3 AS TEXT) IS NULL OR d.event_id = $3)
                            AND (CAST($4 AS TEXT) IS NULL OR d.endpoint_id = $4)
                          ORDER BY d.seq DESC LIMIT 1)
          AND (CAST($4 AS TEXT) IS NULL OR endpoint_id = $4)
        RETURNING *
        """)

    static let releaseLeases = Statement("""
        UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE substr(lease_owner, 1, length($1)) = $1
        """)
}

extension Outbox where Self: StatementRunner {
    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await first(OutboxStatements.callbackSummary, [taskID]) { try RowMapping.callbackSummary($0) }
    }

    public func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState] {
        Dictionary(try await rows(OutboxStatements.callbackStates, [taskIDs]) { try RowMapping.deliveryState($0) }, uniquingKeysWith: { $1 })
    }

    public func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]? {
        let arguments: [any SQLBindable] = [taskID, scope]
        return try await run([BoundStatement(OutboxStatements.taskVisible, arguments), BoundStatement(OutboxStatements.taskDeliveries, arguments),
                              BoundStatement(OutboxStatements.taskAttempts, arguments)], access: .read) { rows in
            guard !rows[0].isEmpty else { return nil }
            let attempts = Dictionary(grouping: try rows[2].map { try RowMapping.attempt($0) }, by: \.key)
            return try rows[1].map { row in
                var record = try RowMapping.delivery(row)
                record.attemptLog = attempts[record.key] ?? []
                return record
            }
        }
    }

    public func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        try await rows(OutboxStatements.byState, [state.rawValue, scope, limit]) { try RowMapping.delivery($0) }
    }

    public func redeliver(taskID: String, scope: ClientScope, eventID: String?, target: DeliveryTarget?, now: Date) async throws -> [DeliveryRecord] {
        try await rows(OutboxStatements.redeliver, [taskID, scope, eventID, target?.stored, now], access: .write) { try RowMapping.delivery($0) }
            .sorted { $0.key.target.stored < $1.key.target.stored }
    }

    public func releaseDeliveryLeases(ownerPrefix prefix: String) async throws {
        try await changed(OutboxStatements.releaseLeases, [prefix], access: .repeatableWrite)
    }
}
