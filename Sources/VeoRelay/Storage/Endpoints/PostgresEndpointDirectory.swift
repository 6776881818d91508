import Foundation
import PostgresNIO

extension PostgresStore: EndpointDirectory {
    public func createEndpoint(_ endpoint: Endpoint, keys: SigningKeys) async throws {
        let types = try TaskColumns.text(endpoint.eventTypes)
        try await rows("""
            INSERT INTO endpoints (id, client_id, url, destination, description, event_types, enabled, max_rate, signing_secret, created_at, updated_at)
            VALUES (\(endpoint.id), \(endpoint.clientID), \(endpoint.url), \(endpoint.destination), \(endpoint.description), \(types),
                    \(endpoint.enabled ? 1 : 0), \(endpoint.maxRate), \(keys.stored), \(endpoint.createdAt.timeIntervalSince1970),
                    \(endpoint.updatedAt.timeIntervalSince1970))
            """)
    }

    public func endpoints(scope: ClientScope) async throws -> [Endpoint] {
        let clientID = scope.clientID
        return try await rows("""
            SELECT * FROM endpoints WHERE (\(clientID)::text IS NULL OR client_id = \(clientID)) ORDER BY created_at, id
            """).map(RowMapping.endpoint)
    }

    public func endpoint(id: String, scope: ClientScope) async throws -> Endpoint? {
        let clientID = scope.clientID
        return try await rows("""
            SELECT * FROM endpoints WHERE id = \(id) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            """).first.map(RowMapping.endpoint)
    }

    public func updateEndpoint(_ endpoint: Endpoint, now: Date) async throws -> Bool {
        let types = try TaskColumns.text(endpoint.eventTypes)
        return try await transaction { connection in
            try await self.moveDeliveries(of: endpoint, now: now, on: connection)
            return try await !self.rows("""
                UPDATE endpoints SET url = \(endpoint.url), destination = \(endpoint.destination), description = \(endpoint.description),
                    event_types = \(types), max_rate = \(endpoint.maxRate), updated_at = \(now.timeIntervalSince1970),
                    failing_since = CASE WHEN \(endpoint.enabled) AND enabled = 0 THEN NULL ELSE failing_since END,
                    disabled_reason = CASE WHEN \(endpoint.enabled) THEN NULL ELSE disabled_reason END,
                    enabled = \(endpoint.enabled ? 1 : 0)
                WHERE id = \(endpoint.id) AND client_id = \(endpoint.clientID)
                RETURNING id
                """, on: connection).isEmpty
        }
    }

    private func moveDeliveries(of endpoint: Endpoint, now: Date, on connection: PostgresConnection) async throws {
        var binds = PostgresBindings()
        binds.append(endpoint.url)
        binds.append(endpoint.destination)
        binds.append(endpoint.enabled)
        binds.append(now.timeIntervalSince1970)
        binds.append(endpoint.id)
        try await rows(PostgresQuery(unsafeSQL: EndpointStatements.deliveriesStatement { "$\($0)" }, binds: binds), on: connection)
    }

    public func deleteEndpoint(id: String, scope: ClientScope) async throws -> Bool {
        let clientID = scope.clientID
        return try await transaction { connection in
            guard try await !self.rows("""
                DELETE FROM endpoints WHERE id = \(id) AND (\(clientID)::text IS NULL OR client_id = \(clientID)) RETURNING id
                """, on: connection).isEmpty else { return false }
            var binds = PostgresBindings()
            binds.append(id)
            try await self.rows(PostgresQuery(unsafeSQL: EndpointStatements.deletedStatement, binds: binds), on: connection)
            return true
        }
    }

    public func rotateEndpointKeys(id: String, scope: ClientScope, keys: SigningKeys, previousValidUntil: Date, now: Date) async throws -> Bool {
        let clientID = scope.clientID
        return try await !rows("""
            UPDATE endpoints SET previous_secret = signing_secret, previous_secret_expires_at = \(previousValidUntil.timeIntervalSince1970),
                signing_secret = \(keys.stored), updated_at = \(now.timeIntervalSince1970)
            WHERE id = \(id) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            RETURNING id
            """).isEmpty
    }

    public func endpointCredentials(id: String, scope: ClientScope, now: Date) async throws -> [String]? {
        let clientID = scope.clientID
        return try await rows("""
            SELECT signing_secret, CASE WHEN previous_secret_expires_at > \(now.timeIntervalSince1970) THEN previous_secret END AS previous
            FROM endpoints WHERE id = \(id) AND (\(clientID)::text IS NULL OR client_id = \(clientID))
            """).first.map(RowMapping.secrets)
    }

    public func endpointHealth(scope: ClientScope, since: Date) async throws -> [String: EndpointHealth] {
        var binds = PostgresBindings()
        binds.append(scope.clientID)
        binds.append(since.timeIntervalSince1970)
        let rows = try await rows(PostgresQuery(unsafeSQL: EndpointStatements.healthStatement { $0 == 1 ? "$1::text" : "$\($0)" }, binds: binds))
        return try Dictionary(rows.map(RowMapping.endpointHealth), uniquingKeysWith: { first, _ in first })
    }

    public func disableFailingEndpoints(failingBefore cutoff: Date, now: Date) async throws -> [Endpoint] {
        try await transaction { connection in
            let failing = try await self.rows("""
                SELECT * FROM endpoints WHERE enabled = 1 AND failing_since < \(cutoff.timeIntervalSince1970) ORDER BY failing_since FOR UPDATE
                """, on: connection).map(RowMapping.endpoint)
            var disabled: [Endpoint] = []
            for var endpoint in failing {
                let reason = EndpointEvents.disabledReason(since: endpoint.failingSince ?? cutoff)
                endpoint.enabled = false
                endpoint.disabledReason = reason
                try await self.moveDeliveries(of: endpoint, now: now, on: connection)
                try await self.rows("""
                    UPDATE endpoints SET enabled = 0, disabled_reason = \(reason), updated_at = \(now.timeIntervalSince1970) WHERE id = \(endpoint.id)
                    """, on: connection)
                try await self.insertEvents([NewEventRow(try EndpointEvents.disabled(endpoint, reason: reason, at: now), clientID: endpoint.clientID)],
                                            on: connection)
                disabled.append(endpoint)
            }
            return disabled
        }
    }

    public func publishedKeys(clientID: String, now: Date) async throws -> [PublishedKey] {
        var binds = PostgresBindings()
        binds.append(clientID)
        binds.append(now.timeIntervalSince1970)
        return try await rows(PostgresQuery(unsafeSQL: EndpointStatements.keysStatement { "$\($0)" }, binds: binds)).flatMap(RowMapping.publishedKeys)
    }
}
