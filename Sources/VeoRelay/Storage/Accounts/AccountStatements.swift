import Foundation

/// The upstream keys' and holds' statements, the same on both engines, and the part made of them.
/// A hold is one row while it lasts.
enum AccountStatements {
    /// 1 key, 2 reason, 3 now, 4 first probe.
    static let hold = Statement("""
        INSERT INTO upstream_accounts (key_id, reason, held_since, next_probe_at, probes) VALUES ($1, $2, $3, $4, 0)
        ON CONFLICT (key_id) DO UPDATE SET reason = excluded.reason
        RETURNING CASE WHEN held_since = $3 THEN 1 ELSE 0 END AS began, next_probe_at
        """)
    static let holds = Statement("SELECT key_id, reason, held_since, next_probe_at, probes FROM upstream_accounts ORDER BY key_id")
    /// 1 key, 2 the probe's due time as read, 3 its count as read, 4 the next probe's time.
    static let takeProbe = Statement("""
        UPDATE upstream_accounts SET next_probe_at = $4, probes = probes + 1
        WHERE key_id = $1 AND next_probe_at = $2 AND probes = $3
        RETURNING key_id
        """)
    static let release = Statement("DELETE FROM upstream_accounts WHERE key_id = $1 RETURNING held_since")
    /// The clients told of a key's standing (1 the event type's JSON text pattern, 2 key): those whose
    /// tasks the key carries (its owner, or every client without a key of its own) with an enabled
    /// endpoint subscribed.
    static let toldOfStanding = Statement("""
        SELECT DISTINCT client_id FROM endpoints
        WHERE enabled = 1 AND event_types LIKE $1
          AND CASE WHEN (SELECT client_id FROM upstream_keys WHERE name = $2) IS NULL
                   THEN client_id NOT IN (SELECT client_id FROM upstream_keys WHERE client_id IS NOT NULL)
                   ELSE client_id = (SELECT client_id FROM upstream_keys WHERE name = $2) END
        ORDER BY client_id
        """)

    static func toldArguments(_ type: ClientEventType, key: String) -> [any SQLBindable] {
        ["%\"\(type.rawValue)\"%", key]
    }

    static let addKey = Statement("""
        INSERT INTO upstream_keys (name, secret, client_id, max_in_flight, rate, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (name) DO NOTHING RETURNING name
        """)
    static let keys = Statement("SELECT * FROM upstream_keys ORDER BY created_at, name")
    static let enableKey = Statement("UPDATE upstream_keys SET enabled = $2 WHERE name = $1 RETURNING name")
    static let removeKey = Statement("""
        DELETE FROM upstream_keys WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM tasks WHERE upstream_key = $1 AND state IN ('submitting', 'running'))
        RETURNING name
        """)
    /// What a key's `max_in_flight` counts (`now` the placeholder of the time): tasks sent with it that the
    /// upstream may still be working on, and queued tasks claimed to be sent with it under a live lease.
    static func inFlight(now: String) -> String {
        "state IN ('queued', 'submitting', 'running') AND (state <> 'queued' OR lease_expires_at >= \(now))"
    }

    /// Each key's tasks in flight (1 now).
    static let inFlightByKey = Statement("""
        SELECT upstream_key, count(*) AS tasks FROM tasks WHERE upstream_key IS NOT NULL AND \(inFlight(now: "$1")) GROUP BY upstream_key
        """)
    /// One key's (1 key, 2 now), as a claim counts them under the key's lock.
    static let keyInFlight = Statement("SELECT count(*) AS tasks FROM tasks WHERE upstream_key = $1 AND \(inFlight(now: "$2"))")
    /// Serialises claims with one key on PostgreSQL until the transaction ends (SQLite has one writer
    /// anyway); a lock on the name, as the configured key has no row.
    static let lockKey = Statement("SELECT pg_advisory_xact_lock(7318202, hashtext($1)) AS locked")
    static let keyUsed = Statement("SELECT count(*) AS tasks FROM tasks WHERE upstream_key = $1 AND state IN ('submitting', 'running')")
}

extension UpstreamAccounts where Self: StatementRunner {
    public func accountHolds() async throws -> [AccountHold] {
        try await rows(AccountStatements.holds) { row in
            AccountHold(key: try row.text("key_id"), reason: try row.text("reason"), since: try row.date("held_since"),
                        nextProbeAt: try row.date("next_probe_at"), probes: try row.integer("probes"))
        }
    }

    public func takeAccountProbe(_ hold: AccountHold, next: Date) async throws -> Bool {
        try await changed(AccountStatements.takeProbe, [hold.key, hold.nextProbeAt, hold.probes, next]) == 1
    }

    public func addUpstreamKey(_ key: UpstreamKey) async throws -> Bool {
        try await changed(AccountStatements.addKey, [key.name, key.secret.value, key.clientID, key.maxInFlight, key.rate,
                                                     key.enabled ? 1 : 0, key.createdAt]) == 1
    }

    public func upstreamKeys() async throws -> [UpstreamKey] {
        try await rows(AccountStatements.keys) { row in
            UpstreamKey(name: try row.text("name"), secret: try row.text("secret"), clientID: try row.optionalText("client_id"),
                        maxInFlight: try row.optionalInteger("max_in_flight"), rate: try row.optionalReal("rate"),
                        enabled: try row.integer("enabled") != 0, createdAt: try row.date("created_at"))
        }
    }

    public func setUpstreamKey(_ name: String, enabled: Bool) async throws -> Bool {
        try await changed(AccountStatements.enableKey, [name, enabled ? 1 : 0]) == 1
    }

    public func removeUpstreamKey(_ name: String) async throws -> KeyRemoval {
        if try await changed(AccountStatements.removeKey, [name]) == 1 { return .removed }
        let used = try await first(AccountStatements.keyUsed, [name]) { try $0.integer("tasks") } ?? 0
        return used > 0 ? .inUse(tasks: used) : .notFound
    }

    public func upstreamKeysInFlight(now: Date) async throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try await rows(AccountStatements.inFlightByKey, [now]) { (try $0.text("upstream_key"), try $0.integer("tasks")) })
    }
}
