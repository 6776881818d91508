import Foundation
import PostgresNIO

extension PostgresStore: Outbox {
    static let deliveryCandidates = """
        SELECT e.id FROM events e
        WHERE e.state = 'pending' AND e.next_attempt_at <= $1 AND (e.lease_expires_at IS NULL OR e.lease_expires_at < $1)
          AND NOT (e.destination = ANY($3))
          AND NOT EXISTS (SELECT 1 FROM events p WHERE p.task_id = e.task_id AND p.seq < e.seq AND p.state = 'pending')
        ORDER BY e.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
        """

    /// Each claimed event comes back with its client's signing secrets (the previous one while its
    /// grace lasts), so the claim needs no second query.
    static let deliveryClaimStatement = """
        UPDATE events SET lease_owner = $4, lease_expires_at = $5 WHERE id IN (\(deliveryCandidates)) AND \(commitsWithoutFlush)
        RETURNING id, task_id, type, payload, callback_url, destination, client_id, attempts, next_attempt_at, trace_parent,
            (SELECT signing_secret FROM clients WHERE clients.id = events.client_id) AS signing_secret,
            (SELECT previous_secret FROM clients WHERE clients.id = events.client_id AND previous_secret_expires_at > $1) AS previous
        """

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
                try await self.recordAttemptRows(wave.map { AttemptRow(records[$0]) }, on: connection)
            }
        }
    }

    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await rows("""
            SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM events WHERE task_id = \(taskID) AND state <> 'unsubscribed'
            ORDER BY seq DESC LIMIT 1
            """).first.map(RowMapping.callbackSummary)
    }

    public func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]? {
        let clientID = scope.clientID
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

    public func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        let clientID = scope.clientID
        return try await rows("""
            SELECT * FROM events WHERE state = \(state.rawValue) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """).map(RowMapping.delivery)
    }

    public func redeliver(taskID: String, scope: ClientScope, eventID: String?, now: Date) async throws -> DeliveryRecord? {
        let clientID = scope.clientID
        return try await rows("""
            UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = \(now.timeIntervalSince1970), delivered_at = NULL,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = (SELECT e.id FROM events e JOIN tasks t ON t.id = e.task_id
                        WHERE e.task_id = \(taskID) AND e.state <> 'unsubscribed' AND (\(clientID)::text IS NULL OR t.client_id = \(clientID))
                          AND (\(eventID)::text IS NULL OR e.id = \(eventID))
                        ORDER BY e.seq DESC LIMIT 1)
            RETURNING *
            """).first.map(RowMapping.delivery)
    }

    public func releaseDeliveryLeases(ownerPrefix prefix: String) async throws {
        try await rows("""
            UPDATE events SET lease_owner = NULL, lease_expires_at = NULL
            WHERE left(lease_owner, length(\(prefix))) = \(prefix) AND \(unescaped: Self.commitsWithoutFlush)
            """)
    }

    public func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState] {
        try Dictionary(try await rows("""
            SELECT task_id, state FROM events e
            WHERE task_id = ANY(\(taskIDs)) AND state <> 'unsubscribed'
              AND seq = (SELECT MAX(seq) FROM events l WHERE l.task_id = e.task_id AND l.state <> 'unsubscribed')
            """).map(RowMapping.deliveryState), uniquingKeysWith: { $1 })
    }
}
