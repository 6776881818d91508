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
        let endpoints = Dictionary(try await rows(OutboxStatements.claimedEndpoints, [now, endpointIDs]).map {
            (try $0.text("id"), try RowMapping.claimedEndpoint($0))
        }, uniquingKeysWith: { first, _ in first })
        var plan = DeliveryClaimPlan(claimed, endpoints: endpoints, now: now)
        try await plan.settleSlots { endpointID, previous, next in
            try await !self.rows(OutboxStatements.moveSlot, [next, endpointID, previous]).isEmpty
        }
        for (key, due) in plan.putBack {
            try await rows(OutboxStatements.putBack, [due, key.eventID, key.target.stored, lease.owner])
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
                try await self.rows(EndpointStatements.streak, streak.arguments, on: connection)
            }
            return written
        }
    }
}
