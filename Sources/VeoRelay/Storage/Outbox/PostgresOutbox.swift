import Foundation
import PostgresNIO

extension PostgresStore: Outbox {
    static let deliveryCandidates = """
        SELECT d.event_id, d.endpoint_id FROM deliveries d
        WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND (d.lease_expires_at IS NULL OR d.lease_expires_at < $1)
          AND NOT (d.destination = ANY($3))
          AND NOT EXISTS (SELECT 1 FROM deliveries p
                          WHERE p.task_id = d.task_id AND p.endpoint_id = d.endpoint_id AND p.seq < d.seq AND p.state = 'pending')
        ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
        """

    /// Each claimed delivery comes back with its event's payload and its client's signing secrets (the
    /// previous one while its grace lasts), so a claim of callback deliveries needs no second query.
    static let deliveryClaimStatement = """
        UPDATE deliveries SET lease_owner = $4, lease_expires_at = $5
        WHERE (event_id, endpoint_id) IN (\(deliveryCandidates)) AND \(commitsWithoutFlush)
        RETURNING event_id, endpoint_id, task_id, type, url, destination, client_id, attempts, next_attempt_at,
            (SELECT payload FROM events WHERE events.id = deliveries.event_id) AS payload,
            (SELECT trace_parent FROM events WHERE events.id = deliveries.event_id) AS trace_parent,
            (SELECT signing_secret FROM clients WHERE clients.id = deliveries.client_id) AS signing_secret,
            (SELECT previous_secret FROM clients WHERE clients.id = deliveries.client_id AND previous_secret_expires_at > $1) AS previous
        """

    public func claimDeliveryBatch(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> DeliveryClaim {
        let claimed = try await rows(PreparedClaim<DeliveryClaimText>(
            bindings: Self.bindings(now: now.timeIntervalSince1970, limit: limit, excluded: destinations.sorted(), lease: lease)))
            .sorted { try ($0.optionalReal("next_attempt_at") ?? 0) < ($1.optionalReal("next_attempt_at") ?? 0) }
            .map { try RowMapping.pendingDelivery($0, event: $0, secrets: RowMapping.secrets($0)) }
        let endpointIDs = Set(claimed.compactMap(\.key.target.endpointID)).sorted()
        guard !endpointIDs.isEmpty else { return DeliveryClaim(deliveries: claimed) }
        var endpoints: [String: ClaimedEndpoint] = [:]
        for row in try await rows("""
            SELECT id, enabled, max_rate, next_send_at, signing_secret,
                   CASE WHEN previous_secret_expires_at > \(now.timeIntervalSince1970) THEN previous_secret END AS previous
            FROM endpoints WHERE id = ANY(\(endpointIDs))
            """) {
            endpoints[try row.text("id")] = try RowMapping.claimedEndpoint(row)
        }
        var plan = DeliveryClaimPlan(claimed, endpoints: endpoints, now: now)
        try await plan.settleSlots { endpointID, previous, next in
            try await !self.rows("""
                UPDATE endpoints SET next_send_at = \(next.timeIntervalSince1970)
                WHERE id = \(endpointID) AND next_send_at IS NOT DISTINCT FROM \(previous?.timeIntervalSince1970)::double precision
                RETURNING id
                """).isEmpty
        }
        for (key, due) in plan.putBack {
            try await rows("""
                UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = \(due?.timeIntervalSince1970)
                WHERE event_id = \(key.eventID) AND endpoint_id = \(key.target.stored) AND lease_owner = \(lease.owner)
                """)
        }
        return plan.claim
    }

    public func releaseDeliveries(_ keys: [DeliveryKey], lease: Lease) async throws {
        guard !keys.isEmpty else { return }
        try await rows("""
            UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL
            WHERE (event_id, endpoint_id) IN (SELECT * FROM unnest(\(keys.map(\.eventID))::text[], \(keys.map(\.target.stored))::text[]))
              AND lease_owner = \(lease.owner) AND \(unescaped: Self.commitsWithoutFlush)
            """)
    }

    public func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool] {
        let keys = records.map(\.attempt.key.description)
        if records.allSatisfy({ $0.attempt.key.target.endpointID == nil }), Set(keys).count == keys.count {
            // Callback deliveries, each once: no endpoint streak to keep, one statement is the transaction.
            let written = try await recordAttemptRows(records.map(AttemptRow.init), on: nil)
            return keys.map(written.contains)
        }
        return try await transaction(repeatable: true) { connection in
            let written = try await Self.writtenInWaves(keys) { wave in
                try await self.recordAttemptRows(wave.map { AttemptRow(records[$0]) }, on: connection)
            }
            for streak in EndpointStreak.of(zip(records, written).filter(\.1).map(\.0)) {
                var binds = PostgresBindings()
                binds.append(streak.reset)
                binds.append(streak.failingFrom?.timeIntervalSince1970)
                binds.append(streak.endpointID)
                try await self.rows(PostgresQuery(unsafeSQL: EndpointStreak.statement { "$\($0)" }, binds: binds), on: connection)
            }
            return written
        }
    }

    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await rows("""
            SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM deliveries WHERE task_id = \(taskID) AND endpoint_id = ''
            ORDER BY seq DESC LIMIT 1
            """).first.map(RowMapping.callbackSummary)
    }

    public func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]? {
        let clientID = scope.clientID
        guard try await !rows("""
            SELECT 1 AS found FROM tasks WHERE id = \(taskID) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            """).isEmpty else { return nil }
        var records = try await rows("SELECT * FROM deliveries WHERE task_id = \(taskID) ORDER BY seq, endpoint_id").map(RowMapping.delivery)
        for index in records.indices {
            records[index].attemptLog = try await rows("""
                SELECT * FROM delivery_attempts WHERE event_id = \(records[index].eventID) AND endpoint_id = \(records[index].key.target.stored)
                ORDER BY attempted_at, id
                """).map(RowMapping.attempt)
        }
        return records
    }

    public func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        let clientID = scope.clientID
        return try await rows("""
            SELECT * FROM deliveries WHERE state = \(state.rawValue) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            ORDER BY created_at DESC, event_id DESC, endpoint_id LIMIT \(limit)
            """).map(RowMapping.delivery)
    }

    public func redeliver(taskID: String, scope: ClientScope, eventID: String?, target: DeliveryTarget?, now: Date) async throws -> [DeliveryRecord] {
        let (clientID, endpointID) = (scope.clientID, target?.stored)
        return try await rows("""
            UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = \(now.timeIntervalSince1970), delivered_at = NULL,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE event_id = (SELECT d.event_id FROM deliveries d JOIN tasks t ON t.id = d.task_id
                              WHERE d.task_id = \(taskID) AND (\(clientID)::text IS NULL OR t.client_id = \(clientID))
                                AND (\(eventID)::text IS NULL OR d.event_id = \(eventID))
                                AND (\(endpointID)::text IS NULL OR d.endpoint_id = \(endpointID))
                              ORDER BY d.seq DESC LIMIT 1)
              AND (\(endpointID)::text IS NULL OR endpoint_id = \(endpointID))
            RETURNING *
            """).map(RowMapping.delivery).sorted { $0.key.target.stored < $1.key.target.stored }
    }

    public func releaseDeliveryLeases(ownerPrefix prefix: String) async throws {
        try await rows("""
            UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL
            WHERE left(lease_owner, length(\(prefix))) = \(prefix) AND \(unescaped: Self.commitsWithoutFlush)
            """)
    }

    public func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState] {
        try Dictionary(try await rows("""
            SELECT task_id, state FROM deliveries d
            WHERE task_id = ANY(\(taskIDs)) AND endpoint_id = ''
              AND seq = (SELECT MAX(seq) FROM deliveries l WHERE l.task_id = d.task_id AND l.endpoint_id = '')
            """).map(RowMapping.deliveryState), uniquingKeysWith: { $1 })
    }
}
