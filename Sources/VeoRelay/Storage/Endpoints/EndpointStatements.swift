import Foundation

/// The endpoint directory's statements, the same on both engines, and the directory made of them.
enum EndpointStatements {
    static let insert = Statement("""
        INSERT INTO endpoints (id, client_id, url, destination, description, event_types, enabled, max_rate, signing_secret, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        """)

    static let all = Statement("SELECT * FROM endpoints WHERE \(scoped("client_id", 1)) ORDER BY created_at, id")
    static let byID = Statement("SELECT * FROM endpoints WHERE id = $1 AND \(scoped("client_id", 2))")

    /// An endpoint's pending deliveries after a change (1 url, 2 destination, 3 enabled, 4 now, 5 id), run
    /// before the endpoint's row is written: they follow a new URL; disabled, they wait with no due time;
    /// enabled again, every one is due now (an attempt that was in flight when it was disabled may have
    /// set a retry time since).
    static let moveDeliveries = Statement("""
        UPDATE deliveries SET url = $1, destination = $2,
            next_attempt_at = CASE WHEN $3 = 0 THEN NULL
                                   WHEN (SELECT enabled FROM endpoints WHERE id = $5) = 0 THEN $4
                                   ELSE next_attempt_at END
        WHERE endpoint_id = $5 AND state = 'pending'
        """)

    /// 1 url, 2 destination, 3 description, 4 event types, 5 max rate, 6 now, 7 enabled, 8 id, 9 client.
    static let update = Statement("""
        UPDATE endpoints SET url = $1, destination = $2, description = $3, event_types = $4, max_rate = $5, updated_at = $6,
            failing_since = CASE WHEN $7 = 1 AND enabled = 0 THEN NULL ELSE failing_since END,
            disabled_reason = CASE WHEN $7 = 1 THEN NULL ELSE disabled_reason END,
            enabled = $7
        WHERE id = $8 AND client_id = $9
        RETURNING id
        """)

    static let delete = Statement("DELETE FROM endpoints WHERE id = $1 AND \(scoped("client_id", 2)) RETURNING id")

    /// A deleted endpoint's pending deliveries end (1: its id); nothing while the endpoint still exists.
    static let endDeliveriesOfDeleted = Statement("""
        UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, last_error = 'endpoint deleted', lease_owner = NULL, lease_expires_at = NULL
        WHERE endpoint_id = $1 AND state = 'pending' AND NOT EXISTS (SELECT 1 FROM endpoints WHERE id = $1)
        """)

    /// 1 until, 2 keys, 3 now, 4 id, 5 scope.
    static let rotate = Statement("""
        UPDATE endpoints SET previous_secret = signing_secret, previous_secret_expires_at = $1, signing_secret = $2, updated_at = $3
        WHERE id = $4 AND \(scoped("client_id", 5))
        RETURNING id
        """)

    /// 1 now, 2 id, 3 scope.
    static let credentials = Statement("""
        SELECT signing_secret, CASE WHEN previous_secret_expires_at > $1 THEN previous_secret END AS previous
        FROM endpoints WHERE id = $2 AND \(scoped("client_id", 3))
        """)

    /// Attempts per endpoint of a scope (1) since 2, with the last failure's reason.
    static let health = Statement("""
        SELECT a.endpoint_id, count(*) AS attempts, sum(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS succeeded,
               max(a.attempted_at) AS last_attempt_at,
               (SELECT COALESCE(l.error, 'HTTP ' || l.status_code) FROM delivery_attempts l
                WHERE l.endpoint_id = a.endpoint_id AND (l.status_code IS NULL OR l.status_code NOT BETWEEN 200 AND 299)
                ORDER BY l.attempted_at DESC LIMIT 1) AS last_error
        FROM delivery_attempts a JOIN endpoints ep ON ep.id = a.endpoint_id
        WHERE \(scoped("ep.client_id", 1)) AND a.attempted_at >= $2
        GROUP BY a.endpoint_id
        """)

    /// The client's and its endpoints' current and previous credentials (1: client id, 2: now).
    static let keys = Statement("""
        SELECT CAST(NULL AS TEXT) AS endpoint_id, signing_secret, CASE WHEN previous_secret_expires_at > $2 THEN previous_secret END AS previous,
               previous_secret_expires_at
        FROM clients WHERE id = $1
        UNION ALL
        SELECT id, signing_secret, CASE WHEN previous_secret_expires_at > $2 THEN previous_secret END, previous_secret_expires_at
        FROM endpoints WHERE client_id = $1
        """)

    /// Endpoints failing since before 1, oldest first.
    static let failing = Statement("SELECT * FROM endpoints WHERE enabled = 1 AND failing_since < $1 ORDER BY failing_since")

    /// 1 reason, 2 now, 3 id.
    static let disable = Statement("UPDATE endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND enabled = 1 RETURNING id")

    /// `failing_since` after a batch's streak (1 whether a success reset it, 2 when the streak left began, 3 id).
    static let streak = Statement("""
        UPDATE endpoints SET failing_since = CASE WHEN $1 = 1 THEN $2 ELSE COALESCE(failing_since, $2) END WHERE id = $3
        """)

    static func moveArguments(_ endpoint: Endpoint, now: Date) -> [any SQLBindable] {
        [endpoint.url, endpoint.destination, endpoint.enabled, now, endpoint.id]
    }
}

extension EndpointDirectory where Self: StatementRunner {
    public func createEndpoint(_ endpoint: Endpoint, keys: SigningKeys) async throws {
        try await changed(EndpointStatements.insert, [endpoint.id, endpoint.clientID, endpoint.url, endpoint.destination, endpoint.description,
                                                      try TaskColumns.text(endpoint.eventTypes), endpoint.enabled, endpoint.maxRate, keys.stored,
                                                      endpoint.createdAt, endpoint.updatedAt])
    }

    public func endpoints(scope: ClientScope) async throws -> [Endpoint] {
        try await rows(EndpointStatements.all, [scope]) { try RowMapping.endpoint($0) }
    }

    public func endpoint(id: String, scope: ClientScope) async throws -> Endpoint? {
        try await first(EndpointStatements.byID, [id, scope]) { try RowMapping.endpoint($0) }
    }

    public func updateEndpoint(_ endpoint: Endpoint, now: Date) async throws -> Bool {
        let update: [any SQLBindable] = [endpoint.url, endpoint.destination, endpoint.description, try TaskColumns.text(endpoint.eventTypes),
                                         endpoint.maxRate, now, endpoint.enabled, endpoint.id, endpoint.clientID]
        return try await run([BoundStatement(EndpointStatements.moveDeliveries, EndpointStatements.moveArguments(endpoint, now: now)),
                              BoundStatement(EndpointStatements.update, update)], access: .write) { $0[1].count == 1 }
    }

    public func deleteEndpoint(id: String, scope: ClientScope) async throws -> Bool {
        try await run([BoundStatement(EndpointStatements.delete, [id, scope]), BoundStatement(EndpointStatements.endDeliveriesOfDeleted, [id])],
                      access: .write) { $0[0].count == 1 }
    }

    public func rotateEndpointKeys(id: String, scope: ClientScope, keys: SigningKeys, previousValidUntil: Date, now: Date) async throws -> Bool {
        try await changed(EndpointStatements.rotate, [previousValidUntil, keys.stored, now, id, scope]) == 1
    }

    public func endpointCredentials(id: String, scope: ClientScope, now: Date) async throws -> [String]? {
        try await first(EndpointStatements.credentials, [now, id, scope]) { try RowMapping.secrets($0) }
    }

    public func endpointHealth(scope: ClientScope, since: Date) async throws -> [String: EndpointHealth] {
        Dictionary(try await rows(EndpointStatements.health, [scope, since]) { try RowMapping.endpointHealth($0) },
                       uniquingKeysWith: { first, _ in first })
    }

    public func publishedKeys(clientID: String, now: Date) async throws -> [PublishedKey] {
        try await rows(EndpointStatements.keys, [clientID, now]) { try RowMapping.publishedKeys($0) }.flatMap { $0 }
    }
}
