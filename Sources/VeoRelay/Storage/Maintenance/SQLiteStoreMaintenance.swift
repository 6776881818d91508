import Foundation
import GRDB

extension SQLiteStore: StoreMaintenance {
    public func checkReady() async throws {
        // Reads still work on a full disk: only a recent write failure tells.
        if storageFull.isRecent { throw StorageFault.full(database: deadline.database) }
        guard try await read({ db in try SQLiteMigrations.migrator.hasCompletedMigrations(db) }) else {
            throw StoreNotReady(description: "the database lacks migrations of this build")
        }
    }

    public func databaseTime() async throws -> Date? { nil }

    /// The plan of each claim statement as it runs (the plan of the bare candidate query can differ:
    /// inside the statement, SQLite may sort where the bare query merges).
    public func explainClaims(now: Date) async throws -> [ClaimPlan] {
        let arguments: StatementArguments = ["now": now.timeIntervalSince1970, "limit": 32, "excluded": "[]", "owner": "explain", "expires": 0,
                                                 "silentSince": 0, "key": UpstreamKey.configuredName, "keyClient": nil, "capacity": 32]
        return try await read { db in
            try [("submission", Self.claimStatement(.submission())), ("poll", Self.claimStatement(.poll)), ("delivery", Self.deliveryClaimStatement)]
                .map { name, sql in
                    let steps = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
                    return ClaimPlan(claim: name, plan: steps.joined(separator: "; "))
                }
        }
    }
}
