import Foundation
import PostgresNIO

extension PostgresStore: UsageLedger {
    public func setBudget(_ budget: ClientBudget, clientID: String) async throws -> Bool {
        let text = budget.isUnlimited ? nil : budget.text
        return try await !rows("UPDATE clients SET budget = \(text) WHERE id = \(clientID) RETURNING id").isEmpty
    }

    public func usage(_ scope: ClientScope, from: String, through: String) async throws -> [UsageRecord] {
        let clientID = scope.clientID
        return try await rows("""
            SELECT * FROM usage_daily WHERE (\(clientID)::text IS NULL OR client_id = \(clientID)) AND day BETWEEN \(from) AND \(through)
            ORDER BY day, client_id, model
            """).map(UsageWindow.record)
    }

    public func budgetStanding(clientID: String, at now: Date) async throws -> BudgetStanding? {
        try await transaction { connection in
            guard let row = try await self.rows("SELECT budget FROM clients WHERE id = \(clientID)", on: connection).first else { return nil }
            let budget = try row.optionalText("budget").map(ClientBudget.init(parsing:)) ?? .unlimited
            return BudgetStanding(budget: budget, use: try await self.use(of: clientID, at: now, on: connection))
        }
    }

    /// The limits of those of `clientIDs` that have any, each client's row locked until the transaction
    /// ends: intakes of one budgeted client take turns, and each sees the tasks the one before it
    /// committed, so two relays never admit past a limit. Locked in id order, so they never deadlock.
    func lockBudgets(of clientIDs: Set<String>, on connection: PostgresConnection) async throws -> [String: ClientBudget] {
        let ids = clientIDs.sorted()
        var budgets: [String: ClientBudget] = [:]
        for row in try await rows("""
            SELECT id, budget FROM clients WHERE id = ANY(\(ids)) AND budget IS NOT NULL ORDER BY id FOR UPDATE
            """, on: connection) {
            budgets[try row.text("id")] = try ClientBudget.stored(try row.text("budget"))
        }
        return budgets
    }

    /// See `SQLiteStore.use(of:at:db:)`.
    func use(of clientID: String, at now: Date, on connection: PostgresConnection) async throws -> BudgetUse {
        let window = UsageWindow(at: now)
        var binds = PostgresBindings()
        for value in [clientID, window.today, window.monthFirst, window.monthLast] { binds.append(value) }
        guard let sums = try await rows(PostgresQuery(unsafeSQL: UsageWindow.sumsStatement, binds: binds), on: connection).first else {
            throw StoreError.missingValue("usage_daily sums")
        }
        return try UsageWindow.use(sums: sums)
    }

    /// A change to one usage row, as `record` sends it.
    struct UsageRow: Encodable {
        var client_id, day, model: String
        var generations, video_seconds, succeeded, failed, cancelled: Int

        init(_ change: UsageChange) {
            (client_id, day, model) = (change.clientID, change.day, change.model)
            let delta = change.delta
            (generations, video_seconds, succeeded, failed, cancelled) = (delta.generations, delta.videoSeconds, delta.succeeded,
                                                                         delta.failed, delta.cancelled)
        }
    }

    /// Adds the changes to the aggregate in one statement; run last in its transaction, so that the
    /// rows it locks are held only until the commit.
    func record(_ changes: [UsageChange], on connection: PostgresConnection?) async throws {
        let rows = UsageChange.merged(changes).map(UsageRow.init)
        guard !rows.isEmpty else { return }
        try await self.rows(PostgresQuery(unsafeSQL: """
            INSERT INTO usage_daily (client_id, day, model, generations, video_seconds, succeeded, failed, cancelled)
            SELECT client_id, day, model, generations, video_seconds, succeeded, failed, cancelled
            FROM json_to_recordset($1::json) AS r(client_id text, day text, model text, generations bigint, video_seconds bigint,
                                                  succeeded bigint, failed bigint, cancelled bigint)
            \(UsageWindow.upsertSuffix)
            """, binds: try Self.recordset(rows)), on: connection)
    }
}
