import Foundation
import PostgresNIO

/// Intake's budget check and the usage aggregate's writes, inside PostgreSQL's transactions.
extension PostgresStore {
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

    /// What the client has used of the periods that hold `now`, and its tasks in flight.
    func use(of clientID: String, at now: Date, on connection: PostgresConnection) async throws -> BudgetUse {
        guard let sums = try await rows(UsageStatements.sums, UsageWindow(at: now).arguments(clientID: clientID), on: connection).first else {
            throw StoreError.missingValue("usage_daily sums")
        }
        return try UsageStatements.use(sums: sums)
    }

    /// A change to one usage row, as `record` sends it.
    struct UsageRow: Encodable {
        var upstream_key: String?
        var client_id, day, model: String
        var generations, video_seconds, succeeded, failed, cancelled: Int

        init(_ change: UsageChange) {
            (upstream_key, client_id, day, model) = (change.upstreamKey, change.clientID, change.day, change.model)
            let delta = change.delta
            (generations, video_seconds, succeeded, failed, cancelled) = (delta.generations, delta.videoSeconds, delta.succeeded,
                                                                         delta.failed, delta.cancelled)
        }
    }

    /// Adds the changes to the aggregate, clients' rows and keys' rows, in one statement; run last in its
    /// transaction, so that the rows it locks are held only until the commit.
    func record(_ changes: [UsageChange], on connection: PostgresConnection?) async throws {
        let rows = UsageChange.merged(changes).map(UsageRow.init)
        guard !rows.isEmpty else { return }
        let columns = """
            r(upstream_key text, client_id text, day text, model text, generations bigint, video_seconds bigint, succeeded bigint,
              failed bigint, cancelled bigint)
            """
        try await self.rows(PostgresQuery(unsafeSQL: """
            WITH r AS (SELECT * FROM json_to_recordset($1::json) AS \(columns)),
            paid AS (
                INSERT INTO upstream_usage_daily (upstream_key, client_id, day, model, generations, video_seconds, succeeded, failed)
                SELECT upstream_key, client_id, day, model, generations, video_seconds, succeeded, failed FROM r WHERE upstream_key IS NOT NULL
                \(UsageStatements.paidUpsertSuffix))
            INSERT INTO usage_daily (client_id, day, model, generations, video_seconds, succeeded, failed, cancelled)
            SELECT client_id, day, model, generations, video_seconds, succeeded, failed, cancelled FROM r WHERE upstream_key IS NULL
            \(UsageStatements.upsertSuffix)
            """, binds: try Self.recordset(rows)), on: connection)
    }
}
