import Foundation
import GRDB

/// Intake's budget check and the usage aggregate's writes, inside SQLite's transactions.
extension SQLiteStore {
    /// The client's limits, if it has any.
    static func budget(of clientID: String, db: Database) throws -> ClientBudget? {
        try db.first(UsageStatements.budget, [clientID]).map { try ClientBudget.stored(try $0.text("budget")) }
    }

    /// What the client has used of the periods that hold `now`, and its tasks in flight.
    static func use(of clientID: String, at now: Date, db: Database) throws -> BudgetUse {
        guard let sums = try db.first(UsageStatements.sums, UsageWindow(at: now).arguments(clientID: clientID)) else {
            throw StoreError.missingValue("usage_daily sums")
        }
        return try UsageStatements.use(sums: sums)
    }

    static func record(_ changes: [UsageChange], db: Database) throws {
        for change in UsageChange.merged(changes) {
            let delta = change.delta
            if let key = change.upstreamKey {
                try db.rows(UsageStatements.addPaid, [key, change.clientID, change.day, change.model, delta.generations, delta.videoSeconds,
                                                      delta.succeeded, delta.failed])
            } else {
                try db.rows(UsageStatements.add, [change.clientID, change.day, change.model, delta.generations, delta.videoSeconds,
                                                   delta.succeeded, delta.failed, delta.cancelled])
            }
        }
    }
}
