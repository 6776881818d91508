import Foundation
import GRDB

extension SQLiteStore: UsageLedger {
    public func setBudget(_ budget: ClientBudget, clientID: String) async throws -> Bool {
        try await write { db in
            try db.cachedStatement(sql: "UPDATE clients SET budget = ? WHERE id = ?")
                .execute(arguments: [budget.isUnlimited ? nil : budget.text, clientID])
            return db.changesCount == 1
        }
    }

    public func usage(_ scope: ClientScope, from: String, through: String) async throws -> [UsageRecord] {
        let clientID = scope.clientID
        return try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM usage_daily WHERE (?1 IS NULL OR client_id = ?1) AND day BETWEEN ?2 AND ?3 ORDER BY day, client_id, model
                """), arguments: [clientID, from, through]).map(UsageWindow.record)
        }
    }

    public func budgetStanding(clientID: String, at now: Date) async throws -> BudgetStanding? {
        try await read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT budget FROM clients WHERE id = ?"), arguments: [clientID]) else {
                return nil
            }
            let budget = try (row["budget"] as String?).map(ClientBudget.init(parsing:)) ?? .unlimited
            return BudgetStanding(budget: budget, use: try Self.use(of: clientID, at: now, db: db))
        }
    }

    /// The client's limits, if it has any.
    static func budget(of clientID: String, db: Database) throws -> ClientBudget? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT budget FROM clients WHERE id = ? AND budget IS NOT NULL"), arguments: [clientID])
            .map(ClientBudget.stored)
    }

    /// The shared statement with SQLite's numbered parameters (`?1` for `$1`), rewritten once.
    static let sumsStatement = UsageWindow.sumsStatement.replacingOccurrences(of: "$", with: "?")

    /// What the client has used of the periods that hold `now`, and its tasks in flight: one statement
    /// on the aggregate (see `UsageWindow.sumsStatement`).
    static func use(of clientID: String, at now: Date, db: Database) throws -> BudgetUse {
        let window = UsageWindow(at: now)
        let sums = try Row.fetchOne(db.cachedStatement(sql: sumsStatement),
                                    arguments: [clientID, window.today, window.monthFirst, window.monthLast])!
        return try UsageWindow.use(sums: sums)
    }

    static func record(_ changes: [UsageChange], db: Database) throws {
        for change in UsageChange.merged(changes) {
            let delta = change.delta
            try db.cachedStatement(sql: """
                INSERT INTO usage_daily (client_id, day, model, generations, video_seconds, succeeded, failed, cancelled)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) \(UsageWindow.upsertSuffix)
                """).execute(arguments: [change.clientID, change.day, change.model, delta.generations, delta.videoSeconds,
                                         delta.succeeded, delta.failed, delta.cancelled])
        }
    }
}
