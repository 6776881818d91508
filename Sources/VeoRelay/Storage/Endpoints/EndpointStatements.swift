/// Statements both stores run for endpoints, with `parameter(n)` the store's n-th placeholder.
enum EndpointStatements {
    /// An endpoint's pending deliveries after a change (1 url, 2 destination, 3 enabled, 4 now, 5 id), run
    /// before the endpoint's row is written: they follow a new URL; disabled, they wait with no due time;
    /// enabled again, every one is due now (an attempt that was in flight when it was disabled may have
    /// set a retry time since).
    static func deliveriesStatement(parameter: (Int) -> String) -> String {
        """
        UPDATE deliveries SET url = \(parameter(1)), destination = \(parameter(2)),
            next_attempt_at = CASE WHEN NOT \(parameter(3)) THEN NULL
                                   WHEN (SELECT enabled FROM endpoints WHERE id = \(parameter(5))) = 0 THEN \(parameter(4))
                                   ELSE next_attempt_at END
        WHERE endpoint_id = \(parameter(5)) AND state = 'pending'
        """
    }

    /// A deleted endpoint's pending deliveries end (1: its id).
    static let deletedStatement = """
        UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, last_error = 'endpoint deleted', lease_owner = NULL, lease_expires_at = NULL
        WHERE endpoint_id = $1 AND state = 'pending'
        """

    /// Attempts per endpoint of a client (1: client id or NULL for all) since 2, with the last failure's reason.
    static func healthStatement(parameter: (Int) -> String) -> String {
        """
        SELECT a.endpoint_id, count(*) AS attempts, sum(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS succeeded,
               max(a.attempted_at) AS last_attempt_at,
               (SELECT COALESCE(l.error, 'HTTP ' || l.status_code) FROM delivery_attempts l
                WHERE l.endpoint_id = a.endpoint_id AND (l.status_code IS NULL OR l.status_code NOT BETWEEN 200 AND 299)
                ORDER BY l.attempted_at DESC LIMIT 1) AS last_error
        FROM delivery_attempts a JOIN endpoints ep ON ep.id = a.endpoint_id
        WHERE (\(parameter(1)) IS NULL OR ep.client_id = \(parameter(1))) AND a.attempted_at >= \(parameter(2))
        GROUP BY a.endpoint_id
        """
    }

    /// The client's and its endpoints' current and previous credentials (1: client id, 2: now).
    static func keysStatement(parameter: (Int) -> String) -> String {
        """
        SELECT CAST(NULL AS TEXT) AS endpoint_id, signing_secret, CASE WHEN previous_secret_expires_at > \(parameter(2)) THEN previous_secret END AS previous,
               previous_secret_expires_at
        FROM clients WHERE id = \(parameter(1))
        UNION ALL
        SELECT id, signing_secret, CASE WHEN previous_secret_expires_at > \(parameter(2)) THEN previous_secret END, previous_secret_expires_at
        FROM endpoints WHERE client_id = \(parameter(1))
        """
    }
}
