import Foundation

/// The upstream account's statements, the same on both engines, and the part made of them. One row
/// while a hold lasts (`upstream` is the one configured key's row).
enum AccountStatements {
    static let hold = Statement("""
        INSERT INTO upstream_accounts (key_id, reason, held_since, next_probe_at, probes) VALUES ('upstream', $1, $2, $3, 0)
        ON CONFLICT (key_id) DO UPDATE SET reason = excluded.reason
        RETURNING CASE WHEN held_since = $2 THEN 1 ELSE 0 END AS began
        """)
    static let read = Statement("SELECT reason, held_since, next_probe_at, probes FROM upstream_accounts WHERE key_id = 'upstream'")
    /// 1 the probe's due time as read, 2 its count as read, 3 the next probe's time.
    static let takeProbe = Statement("""
        UPDATE upstream_accounts SET next_probe_at = $3, probes = probes + 1
        WHERE key_id = 'upstream' AND next_probe_at = $1 AND probes = $2
        RETURNING key_id
        """)
    static let release = Statement("DELETE FROM upstream_accounts WHERE key_id = 'upstream' RETURNING held_since")
}

extension UpstreamAccounts where Self: StatementRunner {
    public func holdAccount(reason: String, at now: Date, firstProbeAt: Date) async throws -> Bool {
        try await first(AccountStatements.hold, [reason, now, firstProbeAt], access: .write) { try $0.integer("began") } == 1
    }

    public func accountHold() async throws -> AccountHold? {
        try await first(AccountStatements.read) { row in
            AccountHold(reason: try row.text("reason"), since: try row.date("held_since"), nextProbeAt: try row.date("next_probe_at"),
                        probes: try row.integer("probes"))
        }
    }

    public func takeAccountProbe(_ hold: AccountHold, next: Date) async throws -> Bool {
        try await changed(AccountStatements.takeProbe, [hold.nextProbeAt, hold.probes, next]) == 1
    }

    public func releaseAccount() async throws -> Date? {
        try await first(AccountStatements.release, access: .write) { try $0.date("held_since") }
    }
}
