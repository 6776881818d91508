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
            // A batch's deliveries mostly belong to few clients and endpoints: look each one's secrets up once.
            var clientSecrets: [String: [String]] = [:]
            var endpoints: [String: ClaimedEndpoint] = [:]
            var claimed: [PendingDelivery] = []
            for row in rows.sorted(by: { ($0["next_attempt_at"] as Double? ?? 0) < ($1["next_attempt_at"] as Double? ?? 0) }) {
                let clientID: String = row["client_id"]
                if clientSecrets[clientID] == nil {
                    clientSecrets[clientID] = try Row.fetchOne(db.cachedStatement(sql: """
                        SELECT signing_secret, CASE WHEN previous_secret_expires_at > ? THEN previous_secret END AS previous
                        FROM clients WHERE id = ?
                        """), arguments: [at, clientID]).map(RowMapping.secrets) ?? []
                }
                let endpointID: String = row["endpoint_id"]
                if !endpointID.isEmpty, endpoints[endpointID] == nil,
                   let endpoint = try Row.fetchOne(db.cachedStatement(sql: """
                        SELECT enabled, max_rate, next_send_at, signing_secret,
                               CASE WHEN previous_secret_expires_at > ? THEN previous_secret END AS previous
                        FROM endpoints WHERE id = ?
                        """), arguments: [at, endpointID]) {
                    endpoints[endpointID] = try RowMapping.claimedEndpoint(endpoint)
                }
                claimed.append(try RowMapping.pendingDelivery(row, event: events[row["event_id"] as String], secrets: clientSecrets[clientID] ?? []))
            }
            var plan = DeliveryClaimPlan(claimed, endpoints: endpoints, now: now)
            try Self.settle(&plan, db: db)
            return plan.claim
        }
    }

    /// Parks, defers and moves endpoint slots as the plan says; SQLite's one writer always wins the slot.
    private static func settle(_ plan: inout DeliveryClaimPlan, db: Database) throws {
        for (endpointID, slot) in plan.slots {
            try db.cachedStatement(sql: "UPDATE endpoints SET next_send_at = ? WHERE id = ?")
                .execute(arguments: [slot.next.timeIntervalSince1970, endpointID])
        }
        for (key, due) in plan.putBack {
            try db.cachedStatement(sql: """
                UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ? WHERE event_id = ? AND endpoint_id = ?
                """).execute(arguments: [due?.timeIntervalSince1970, key.eventID, key.target.stored])
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
                try db.cachedStatement(sql: EndpointStreak.statement { [":reset", ":from", ":id"][$0 - 1] })
                    .execute(arguments: ["reset": streak.reset, "from": streak.failingFrom?.timeIntervalSince1970, "id": streak.endpointID])
            }
            return written
        }
    }

    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM deliveries
                WHERE task_id = ? AND endpoint_id = '' ORDER BY seq DESC LIMIT 1
                """), arguments: [taskID]).map(RowMapping.callbackSummary)
        }
    }

    public func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]? {
        let clientID = scope.clientID
        return try await read { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM tasks WHERE id = ? AND (? IS NULL OR client_id = ?)"),
                                    arguments: [taskID, clientID, clientID]) != nil else {
                return nil
            }
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM deliveries WHERE task_id = ? ORDER BY seq, endpoint_id"),
                                    arguments: [taskID]).map { row in
                var record = try RowMapping.delivery(row)
                record.attemptLog = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT * FROM delivery_attempts WHERE event_id = ? AND endpoint_id = ? ORDER BY attempted_at, id
                    """), arguments: [record.eventID, record.key.target.stored]).map(RowMapping.attempt)
                return record
            }
        }
    }

    public func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        let clientID = scope.clientID
        return try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM deliveries WHERE state = ? AND (? IS NULL OR client_id = ?)
                ORDER BY created_at DESC, event_id DESC, endpoint_id LIMIT ?
                """), arguments: [state.rawValue, clientID, clientID, limit]).map(RowMapping.delivery)
        }
    }

    public func redeliver(taskID: String, scope: ClientScope, eventID: String?, target: DeliveryTarget?, now: Date) async throws -> [DeliveryRecord] {
        let (clientID, endpointID) = (scope.clientID, target?.stored)
        return try await write { db in
            guard let id = try String.fetchOne(db.cachedStatement(sql: """
                SELECT d.event_id FROM deliveries d JOIN tasks t ON t.id = d.task_id
                WHERE d.task_id = ? AND (? IS NULL OR t.client_id = ?) AND (? IS NULL OR d.event_id = ?) AND (? IS NULL OR d.endpoint_id = ?)
                ORDER BY d.seq DESC LIMIT 1
                """), arguments: [taskID, clientID, clientID, eventID, eventID, endpointID, endpointID])
            else { return [] }
            return try Row.fetchAll(db.cachedStatement(sql: """
                UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, delivered_at = NULL,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE event_id = ? AND (? IS NULL OR endpoint_id = ?)
                RETURNING *
                """), arguments: [now.timeIntervalSince1970, id, endpointID, endpointID]).map(RowMapping.delivery)
                .sorted { $0.key.target.stored < $1.key.target.stored }
        }
    }

    public func releaseDeliveryLeases(ownerPrefix prefix: String) async throws {
        try await repeatableWrite { db in
            try db.cachedStatement(sql: """
                UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE substr(lease_owner, 1, length(:prefix)) = :prefix
                """).execute(arguments: ["prefix": prefix])
        }
    }

    public func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState] {
        let ids = try TaskColumns.text(taskIDs)
        return try await read { db in
            try Dictionary(Row.fetchAll(db.cachedStatement(sql: """
                SELECT task_id, state FROM deliveries d
                WHERE task_id IN (SELECT value FROM json_each(?)) AND endpoint_id = ''
                  AND seq = (SELECT MAX(seq) FROM deliveries l WHERE l.task_id = d.task_id AND l.endpoint_id = '')
                """), arguments: [ids]).map(RowMapping.deliveryState), uniquingKeysWith: { $1 })
        }
    }
}
