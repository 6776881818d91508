import Foundation
import GRDB

extension SQLiteStore: Outbox {
    static let deliveryCandidates = """
        SELECT e.id FROM events e
        WHERE e.state = 'pending' AND e.next_attempt_at <= :now
          AND (e.lease_expires_at IS NULL OR e.lease_expires_at < :now)
          AND e.destination NOT IN (SELECT value FROM json_each(:excluded))
          AND NOT EXISTS (SELECT 1 FROM events p WHERE p.task_id = e.task_id AND p.seq < e.seq AND p.state = 'pending')
        ORDER BY e.next_attempt_at LIMIT :limit
        """

    static let deliveryClaimStatement = """
        UPDATE events SET lease_owner = :owner, lease_expires_at = :expires
        WHERE id IN (\(deliveryCandidates))
        RETURNING id, task_id, type, payload, callback_url, destination, client_id, attempts, next_attempt_at, trace_parent
        """

    public func claimDeliveries(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> [PendingDelivery] {
        let excluded = try TaskColumns.text(destinations.sorted())
        return try await repeatableWrite { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: Self.deliveryClaimStatement), arguments: ["now": now.timeIntervalSince1970, "owner": lease.owner, "excluded": excluded,
                                 "expires": lease.expiresAt.timeIntervalSince1970, "limit": limit])
            // A batch's events mostly belong to few clients: look each client's secrets up once.
            var secretsByClient: [String: Row?] = [:]
            return try rows.sorted { ($0["next_attempt_at"] as Double? ?? 0) < ($1["next_attempt_at"] as Double? ?? 0) }.map { row in
                let clientID: String = row["client_id"]
                if secretsByClient[clientID] == nil {
                    secretsByClient[clientID] = try Row.fetchOne(db.cachedStatement(sql: """
                        SELECT signing_secret, CASE WHEN previous_secret_expires_at > ? THEN previous_secret END AS previous
                        FROM clients WHERE id = ?
                        """), arguments: [now.timeIntervalSince1970, clientID])
                }
                return try RowMapping.pendingDelivery(row, secrets: secretsByClient[clientID] ?? nil)
            }
        }
    }

    public func releaseDelivery(eventID: String, lease: Lease) async throws {
        try await repeatableWrite { db in
            try db.cachedStatement(sql: "UPDATE events SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?")
                .execute(arguments: [eventID, lease.owner])
        }
    }

    public func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool] {
        try await repeatableWrite { db in
            try records.map { record in
                let (attempt, update) = (record.attempt, record.eventUpdate)
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_status_code = ?, last_error = ?,
                        delivered_at = ?, lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = ? AND lease_owner = ?
                    """).execute(arguments: [update.state.rawValue, update.nextAttemptAt?.timeIntervalSince1970, attempt.statusCode, attempt.error,
                                     update.deliveredAt?.timeIntervalSince1970, attempt.eventID, record.lease.owner])
                guard db.changesCount == 1 else { return false }
                try db.cachedStatement(sql: """
                    INSERT INTO delivery_attempts (event_id, attempted_at, status_code, latency, error, response_excerpt)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [attempt.eventID, attempt.attemptedAt.timeIntervalSince1970, attempt.statusCode,
                                     attempt.latency, attempt.error, attempt.responseExcerpt])
                return true
            }
        }
    }

    public func callbackSummary(taskID: String) async throws -> CallbackSummary? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT state, attempts, last_status_code, last_error, next_attempt_at FROM events
                WHERE task_id = ? AND state <> 'unsubscribed' ORDER BY seq DESC LIMIT 1
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
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM events WHERE task_id = ? AND state <> 'unsubscribed' ORDER BY seq"),
                                    arguments: [taskID]).map { row in
                var record = try RowMapping.delivery(row)
                record.attemptLog = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT * FROM delivery_attempts WHERE event_id = ? ORDER BY attempted_at, id
                    """), arguments: [record.eventID]).map(RowMapping.attempt)
                return record
            }
        }
    }

    public func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        let clientID = scope.clientID
        return try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM events WHERE state = ? AND (? IS NULL OR client_id = ?) ORDER BY created_at DESC, id DESC LIMIT ?
                """), arguments: [state.rawValue, clientID, clientID, limit]).map(RowMapping.delivery)
        }
    }

    public func redeliver(taskID: String, scope: ClientScope, eventID: String?, now: Date) async throws -> DeliveryRecord? {
        let clientID = scope.clientID
        return try await write { db in
            guard let id = try String.fetchOne(db.cachedStatement(sql: """
                SELECT e.id FROM events e JOIN tasks t ON t.id = e.task_id
                WHERE e.task_id = ? AND e.state <> 'unsubscribed' AND (? IS NULL OR t.client_id = ?) AND (? IS NULL OR e.id = ?)
                ORDER BY e.seq DESC LIMIT 1
                """), arguments: [taskID, clientID, clientID, eventID, eventID])
            else { return nil }
            try db.cachedStatement(sql: """
                UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = ?, delivered_at = NULL,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE id = ?
                """).execute(arguments: [now.timeIntervalSince1970, id])
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM events WHERE id = ?"), arguments: [id]).map(RowMapping.delivery)
        }
    }

    public func releaseDeliveryLeases(ownerPrefix prefix: String) async throws {
        try await repeatableWrite { db in
            try db.cachedStatement(sql: """
                UPDATE events SET lease_owner = NULL, lease_expires_at = NULL WHERE substr(lease_owner, 1, length(:prefix)) = :prefix
                """).execute(arguments: ["prefix": prefix])
        }
    }

    public func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState] {
        let ids = try TaskColumns.text(taskIDs)
        return try await read { db in
            try Dictionary(Row.fetchAll(db.cachedStatement(sql: """
                SELECT task_id, state FROM events e
                WHERE task_id IN (SELECT value FROM json_each(?)) AND state <> 'unsubscribed'
                  AND seq = (SELECT MAX(seq) FROM events l WHERE l.task_id = e.task_id AND l.state <> 'unsubscribed')
                """), arguments: [ids]).map(RowMapping.deliveryState), uniquingKeysWith: { $1 })
        }
    }
}
