import Foundation
import GRDB

extension SQLiteStore: EndpointDirectory {
    public func createEndpoint(_ endpoint: Endpoint, keys: SigningKeys) async throws {
        let types = try TaskColumns.text(endpoint.eventTypes)
        try await write { db in
            try db.cachedStatement(sql: """
                INSERT INTO endpoints (id, client_id, url, destination, description, event_types, enabled, max_rate, signing_secret,
                                       created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [endpoint.id, endpoint.clientID, endpoint.url, endpoint.destination, endpoint.description, types,
                                 endpoint.enabled, endpoint.maxRate, keys.stored, endpoint.createdAt.timeIntervalSince1970,
                                 endpoint.updatedAt.timeIntervalSince1970])
        }
    }

    public func endpoints(scope: ClientScope) async throws -> [Endpoint] {
        let clientID = scope.clientID
        return try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM endpoints WHERE (? IS NULL OR client_id = ?) ORDER BY created_at, id"),
                             arguments: [clientID, clientID]).map(RowMapping.endpoint)
        }
    }

    public func endpoint(id: String, scope: ClientScope) async throws -> Endpoint? {
        let clientID = scope.clientID
        return try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM endpoints WHERE id = ? AND (? IS NULL OR client_id = ?)"),
                             arguments: [id, clientID, clientID]).map(RowMapping.endpoint)
        }
    }

    public func updateEndpoint(_ endpoint: Endpoint, now: Date) async throws -> Bool {
        let types = try TaskColumns.text(endpoint.eventTypes)
        return try await write { db in
            try Self.moveDeliveries(of: endpoint, now: now, db: db)
            try db.cachedStatement(sql: """
                UPDATE endpoints SET url = :url, destination = :destination, description = :description, event_types = :types,
                    max_rate = :rate, updated_at = :now,
                    failing_since = CASE WHEN :enabled AND enabled = 0 THEN NULL ELSE failing_since END,
                    disabled_reason = CASE WHEN :enabled THEN NULL ELSE disabled_reason END,
                    enabled = :enabled
                WHERE id = :id AND client_id = :client
                """).execute(arguments: ["url": endpoint.url, "destination": endpoint.destination, "description": endpoint.description,
                                         "types": types, "rate": endpoint.maxRate, "now": now.timeIntervalSince1970,
                                         "enabled": endpoint.enabled, "id": endpoint.id, "client": endpoint.clientID])
            return db.changesCount == 1
        }
    }

    /// The endpoint's pending deliveries after a change (see `EndpointStatements.deliveriesStatement`), before its row is written.
    private static func moveDeliveries(of endpoint: Endpoint, now: Date, db: Database) throws {
        try db.cachedStatement(sql: EndpointStatements.deliveriesStatement { [":url", ":destination", ":enabled", ":now", ":id"][$0 - 1] })
            .execute(arguments: ["url": endpoint.url, "destination": endpoint.destination, "enabled": endpoint.enabled,
                                 "now": now.timeIntervalSince1970, "id": endpoint.id])
    }

    public func deleteEndpoint(id: String, scope: ClientScope) async throws -> Bool {
        let clientID = scope.clientID
        return try await write { db in
            try db.cachedStatement(sql: "DELETE FROM endpoints WHERE id = ? AND (? IS NULL OR client_id = ?)").execute(arguments: [id, clientID, clientID])
            guard db.changesCount == 1 else { return false }
            try db.cachedStatement(sql: EndpointStatements.deletedStatement).execute(arguments: [id])
            return true
        }
    }

    public func rotateEndpointKeys(id: String, scope: ClientScope, keys: SigningKeys, previousValidUntil: Date, now: Date) async throws -> Bool {
        let clientID = scope.clientID
        return try await write { db in
            try db.cachedStatement(sql: """
                UPDATE endpoints SET previous_secret = signing_secret, previous_secret_expires_at = ?, signing_secret = ?, updated_at = ?
                WHERE id = ? AND (? IS NULL OR client_id = ?)
                """).execute(arguments: [previousValidUntil.timeIntervalSince1970, keys.stored, now.timeIntervalSince1970, id, clientID, clientID])
            return db.changesCount == 1
        }
    }

    public func endpointCredentials(id: String, scope: ClientScope, now: Date) async throws -> [String]? {
        let clientID = scope.clientID
        return try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT signing_secret, CASE WHEN previous_secret_expires_at > ? THEN previous_secret END AS previous
                FROM endpoints WHERE id = ? AND (? IS NULL OR client_id = ?)
                """), arguments: [now.timeIntervalSince1970, id, clientID, clientID]).map(RowMapping.secrets)
        }
    }

    public func endpointHealth(scope: ClientScope, since: Date) async throws -> [String: EndpointHealth] {
        let clientID = scope.clientID
        return try await read { db in
            try Dictionary(Row.fetchAll(db.cachedStatement(sql: EndpointStatements.healthStatement(parameter: { ["?1", "?2"][$0 - 1] })),
                                        arguments: [clientID, since.timeIntervalSince1970]).map(RowMapping.endpointHealth),
                           uniquingKeysWith: { first, _ in first })
        }
    }

    public func disableFailingEndpoints(failingBefore cutoff: Date, now: Date) async throws -> [Endpoint] {
        try await write { db in
            let failing = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM endpoints WHERE enabled = 1 AND failing_since < ? ORDER BY failing_since
                """), arguments: [cutoff.timeIntervalSince1970]).map(RowMapping.endpoint)
            return try failing.map { endpoint in
                let reason = EndpointEvents.disabledReason(since: endpoint.failingSince ?? cutoff)
                var disabled = endpoint
                disabled.enabled = false
                disabled.disabledReason = reason
                try Self.moveDeliveries(of: disabled, now: now, db: db)
                try db.cachedStatement(sql: "UPDATE endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?")
                    .execute(arguments: [reason, now.timeIntervalSince1970, endpoint.id])
                try Self.writeClientEvent(EndpointEvents.disabled(disabled, reason: reason, at: now), clientID: endpoint.clientID, db: db)
                return disabled
            }
        }
    }

    public func publishedKeys(clientID: String, now: Date) async throws -> [PublishedKey] {
        try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: EndpointStatements.keysStatement(parameter: { ["?1", "?2"][$0 - 1] })),
                             arguments: [clientID, now.timeIntervalSince1970]).flatMap(RowMapping.publishedKeys)
        }
    }
}
