import Foundation
import GRDB

extension SQLiteStore: Outbox {
    static let deliveryCandidates = """
        SELECT d.event_id, d.endpoint_id FROM deliveries d
        WHERE d.state = 'pending' AND d.next_attempt_at <= :now
          AND (d.lease_expires_at IS NULL OR d.lease_expires_at < :now)
          AND d.destination NOT IN (SELECT value FROM json_each(:excluded))
          AND NOT EXISTS (SELECT 1 FROM deliveries p
                          WHERE p.task_id = d.task_id AND p.endpoint_id = d.endpoint_id AND p.seq < d.seq AND p.state = 'pending')
        ORDER BY d.next_attempt_at LIMIT :limit
        """

    static let deliveryClaimStatement = """
        UPDATE deliveries SET lease_owner = :owner, lease_expires_at = :expires
        WHERE (event_id, endpoint_id) IN (\(deliveryCandidates))
        RETURNING event_id, endpoint_id, task_id, type, url, destination, client_id, attempts, next_attempt_at
        """

    public func claimDeliveryBatch(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> DeliveryClaim {
        let excluded = try TaskColumns.text(destinations.sorted())
        let at = now.timeIntervalSince1970
        return try await repeatableWrite { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: Self.deliveryClaimStatement), arguments: [
                "now": at, "owner": lease.owner, "excluded": excluded, "expires": lease.expiresAt.timeIntervalSince1970, "limit": limit])
            guard !rows.isEmpty else { return DeliveryClaim(deliveries: []) }
            let events = try Dictionary(Row.fetchAll(db.cachedStatement(sql: """
                SELECT id, payload, trace_parent FROM events WHERE id IN (SELECT value FROM json_each(?))
                """), arguments: [TaskColumns.text(rows.map { $0["event_id"] as String })]).map { ($0["id"] as String, $0) },
                uniquingKeysWith: { first, _ in first })
            // A batch's deliveries mostly belong to few clients: look each one's secrets up once.
            var clientSecrets: [String: [String]] = [:]
            var claimed: [PendingDelivery] = []
            for row in rows.sorted(by: { ($0["next_attempt_at"] as Double? ?? 0) < ($1["next_attempt_at"] as Double? ?? 0) }) {
                let clientID: String = row["client_id"]
                if clientSecrets[clientID] == nil {
                    clientSecrets[clientID] = try Row.fetchOne(db.cachedStatement(sql: """
                        SELECT signing_secret, CASE WHEN previous_secret_expires_at > ? THEN previous_secret END AS previous
                        FROM clients WHERE id = ?
                        """), arguments: [at, clientID]).map(RowMapping.secrets) ?? []
                }
                claimed.append(try RowMapping.pendingDelivery(row, event: events[row["event_id"] as String], secrets: clientSecrets[clientID] ?? []))
            }
            let endpointIDs = Set(claimed.compactMap(\.key.target.endpointID)).sorted()
            let endpoints = endpointIDs.isEmpty ? [:] : try Dictionary(
                db.rows(OutboxStatements.claimedEndpoints, [now, endpointIDs]).map { (try $0.text("id"), try RowMapping.claimedEndpoint($0)) },
                uniquingKeysWith: { first, _ in first })
            var plan = DeliveryClaimPlan(claimed, endpoints: endpoints, now: now)
            try Self.settle(&plan, lease: lease, db: db)
            return plan.claim
        }
    }

    /// Parks, defers and moves endpoint slots as the plan says; SQLite's one writer always wins the slot.
    private static func settle(_ plan: inout DeliveryClaimPlan, lease: Lease, db: Database) throws {
        for (endpointID, slot) in plan.slots {
            try db.rows(OutboxStatements.moveSlot, [slot.next, endpointID, slot.previous])
        }
        for (key, due) in plan.putBack {
            try db.rows(OutboxStatements.putBack, [due, key.eventID, key.target.stored, lease.owner])
        }
    }

    public func releaseDeliveries(_ keys: [DeliveryKey], lease: Lease) async throws {
        guard !keys.isEmpty else { return }
        try await repeatableWrite { db in
            let statement = try db.cachedStatement(sql: """
                UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE event_id = ? AND endpoint_id = ? AND lease_owner = ?
                """)
            for key in keys { try statement.execute(arguments: [key.eventID, key.target.stored, lease.owner]) }
        }
    }

    public func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool] {
        try await repeatableWrite { db in
            let written = try records.map { record in
                let (attempt, update) = (record.attempt, record.deliveryUpdate)
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_status_code = ?, last_error = ?,
                        delivered_at = ?, lease_owner = NULL, lease_expires_at = NULL
                    WHERE event_id = ? AND endpoint_id = ? AND lease_owner = ?
                    """).execute(arguments: [update.state.rawValue, update.nextAttemptAt?.timeIntervalSince1970, attempt.statusCode, attempt.error,
                                     update.deliveredAt?.timeIntervalSince1970, attempt.key.eventID, attempt.key.target.stored,
                                     record.lease.owner])
                guard db.changesCount == 1 else { return false }
                try db.cachedStatement(sql: """
                    INSERT INTO delivery_attempts (event_id, endpoint_id, attempted_at, status_code, latency, error, response_excerpt)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [attempt.key.eventID, attempt.key.target.stored, attempt.attemptedAt.timeIntervalSince1970,
                                     attempt.statusCode, attempt.latency, attempt.error, attempt.responseExcerpt])
                return true
            }
            for streak in EndpointStreak.of(zip(records, written).filter(\.1).map(\.0)) {
                try db.rows(EndpointStatements.streak, streak.arguments)
            }
            return written
        }
    }
}
