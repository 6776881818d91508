import Foundation
import PostgresNIO

extension PostgresStore: StoreMaintenance {
    public func checkReady() async throws {
        // Reads still work on a full disk: only a recent write failure tells.
        if storageFull.isRecent { throw StorageFault.full(database: deadline.database) }
        let applied = Set(try await rows("SELECT name FROM schema_migrations").map { try $0.text("name") })
        let missing = PostgresMigrations.steps.map(\.name).filter { !applied.contains($0) }
        guard missing.isEmpty else {
            throw StoreNotReady(description: "the database lacks migrations \(missing.joined(separator: ", "))")
        }
    }

    public func databaseTime() async throws -> Date? {
        // clock_timestamp(): the time of reading, not of the transaction's start.
        try await rows("SELECT CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION) AS now").first.map { try $0.date("now") }
    }

    public func explainClaims(now: Date) async throws -> [ClaimPlan] {
        let at = now.timeIntervalSince1970
        let lease = Lease(owner: "explain", expiresAt: now)
        var plans: [ClaimPlan] = []
        var submission = Self.bindings(now: at, limit: 32, lease: lease, silentSince: at)
        submission.append(UpstreamKey.configuredName)
        submission.appendNull()
        submission.append(32)
        for (name, sql, bindings) in [("submission", Self.claimStatement(.submission()), submission),
                                      ("poll", Self.claimStatement(.poll), Self.bindings(now: at, limit: 32, lease: lease)),
                                      ("delivery", Self.deliveryClaimStatement, Self.bindings(now: at, limit: 32, excluded: [], lease: lease))] {
            // The plan's nodes and index conditions, without cost estimates and row filters. EXPLAIN
            // without ANALYZE plans the statement and does not run it.
            let lines = try await rows(PostgresQuery(unsafeSQL: "EXPLAIN (COSTS OFF) " + sql, binds: bindings)).map { try $0.text("QUERY PLAN") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.hasPrefix("Filter:") && !$0.hasPrefix("Recheck Cond:") }
            plans.append(ClaimPlan(claim: name, plan: lines.joined(separator: "; ")))
        }
        return plans
    }
}
