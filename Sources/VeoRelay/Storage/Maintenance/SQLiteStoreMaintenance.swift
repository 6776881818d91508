import Foundation
import GRDB

extension SQLiteStore: StoreMaintenance {
    public func backlog(now: Date) async throws -> BacklogStatistics {
        let now = now.timeIntervalSince1970
        return try await read { db in
            try BacklogQuery.statistics(from: Row.fetchAll(db, sql: BacklogQuery.sql(now: "?"), arguments: [now, now, now]))
        }
    }

    public func activity(from start: Date, slot: TimeInterval, count: Int) async throws -> ActivityReport {
        let end = start.addingTimeInterval(slot * Double(count))
        let sql = ActivityQuery.sql(parameter: { "?\($0)" }, slotOf: { "CAST(\($0) AS INTEGER)" })
        return try await read { db in
            try ActivityQuery.report(from: Row.fetchAll(db.cachedStatement(sql: sql),
                                                        arguments: [start.timeIntervalSince1970, slot, end.timeIntervalSince1970]),
                                     start: start, slot: slot, count: count)
        }
    }

    public func checkReady() async throws {
        // Reads still work on a full disk: only a recent write failure tells.
        if storageFull.isRecent { throw StorageFault.full(database: deadline.database) }
        guard try await read({ db in try SQLiteMigrations.migrator.hasCompletedMigrations(db) }) else {
            throw StoreNotReady(description: "the database lacks migrations of this build")
        }
    }

    /// The plan of each claim statement as it runs (the plan of the bare candidate query can differ:
    /// inside the statement, SQLite may sort where the bare query merges).
    public func explainClaims(now: Date) async throws -> [ClaimPlan] {
        let arguments: StatementArguments = ["now": now.timeIntervalSince1970, "limit": 32, "excluded": "[]", "owner": "explain", "expires": 0]
        return try await read { db in
            try [("submission", Self.claimStatement(.submission)), ("poll", Self.claimStatement(.poll)), ("delivery", Self.deliveryClaimStatement)]
                .map { name, sql in
                    let steps = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
                    return ClaimPlan(claim: name, plan: steps.joined(separator: "; "))
                }
        }
    }

    public func pruneAttempts(before cutoff: Date) async throws -> Int {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM delivery_attempts WHERE attempted_at < ?").execute(arguments: [cutoff.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func pruneIdempotencyKeys(before cutoff: Date) async throws -> Int {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM idempotency_keys WHERE created_at < ?").execute(arguments: [cutoff.timeIntervalSince1970])
            return db.changesCount
        }
    }
}
