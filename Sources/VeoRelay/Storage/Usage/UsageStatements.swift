import Foundation

/// The usage ledger's statements, the same on both engines, and the ledger read through them. The
/// aggregate itself is written inside the task queue's transactions (`SQLiteUsageCounting`,
/// `PostgresUsageCounting`).
enum UsageStatements {
    static let setBudget = Statement("UPDATE clients SET budget = $1 WHERE id = $2 RETURNING id")

    /// 1 scope, 2 first day, 3 last day.
    static let usage = Statement("""
        SELECT * FROM usage_daily WHERE \(scoped("client_id", 1)) AND day BETWEEN $2 AND $3 ORDER BY day, client_id, model
        """)

    /// A client's limits (1: its id), if it has any.
    static let budget = Statement("SELECT id, budget FROM clients WHERE id = $1 AND budget IS NOT NULL")

    /// Today's and this month's sums of one client, and its tasks in flight (1 client, 2 today, 3 and 4
    /// the month's first and last day; PostgreSQL's sums of BIGINT are NUMERIC, hence the casts). Tasks
    /// are counted by their accepted day and an end or cancel counts on that day's row, so a client's
    /// tasks in flight are its rows' generations not yet succeeded or failed.
    static let sumsText = """
        SELECT CAST(COALESCE(SUM(CASE WHEN day = $2 THEN generations ELSE 0 END), 0) AS BIGINT) AS generations_today,
               CAST(COALESCE(SUM(CASE WHEN day = $2 THEN video_seconds ELSE 0 END), 0) AS BIGINT) AS video_seconds_today,
               CAST(COALESCE(SUM(generations), 0) AS BIGINT) AS generations_month,
               CAST(COALESCE(SUM(video_seconds), 0) AS BIGINT) AS video_seconds_month,
               (SELECT CAST(COALESCE(SUM(generations - succeeded - failed), 0) AS BIGINT) FROM usage_daily
                WHERE client_id = $1 AND \(inFlightRows)) AS in_flight
        FROM usage_daily WHERE client_id = $1 AND day BETWEEN $3 AND $4
        """
    static let sums = Statement(sumsText)

    /// A client's limits beside its sums (the arguments of `sums`); no row if there is no such client.
    static let standing = Statement("SELECT c.budget, s.* FROM clients c CROSS JOIN (\(sumsText)) s WHERE c.id = $1")

    /// The usage rows with tasks in flight, and their index: the sum reads those few rows only.
    static let inFlightRows = "generations > succeeded + failed"
    static let inFlightIndex = "CREATE INDEX usage_daily_in_flight ON usage_daily (client_id) WHERE \(inFlightRows)"

    /// Adds a change to its row, creating it.
    static let upsertSuffix = """
        ON CONFLICT (client_id, day, model) DO UPDATE SET generations = usage_daily.generations + excluded.generations,
            video_seconds = usage_daily.video_seconds + excluded.video_seconds, succeeded = usage_daily.succeeded + excluded.succeeded,
            failed = usage_daily.failed + excluded.failed, cancelled = usage_daily.cancelled + excluded.cancelled
        """

    /// Adds paid generations to their key's row, creating it.
    static let paidUpsertSuffix = """
        ON CONFLICT (upstream_key, client_id, day, model) DO UPDATE SET generations = upstream_usage_daily.generations + excluded.generations,
            video_seconds = upstream_usage_daily.video_seconds + excluded.video_seconds,
            succeeded = upstream_usage_daily.succeeded + excluded.succeeded, failed = upstream_usage_daily.failed + excluded.failed
        """

    /// Paid generations (1 key, 2 client, 3 day, 4 model, 5–8 the counts' deltas).
    static let addPaid = Statement("""
        INSERT INTO upstream_usage_daily (upstream_key, client_id, day, model, generations, video_seconds, succeeded, failed)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \(paidUpsertSuffix)
        """)

    /// Paid generations by key (1 scope, 2 first day, 3 last day).
    static let paid = Statement("""
        SELECT * FROM upstream_usage_daily WHERE \(scoped("client_id", 1)) AND day BETWEEN $2 AND $3 ORDER BY day, upstream_key, client_id, model
        """)

    /// One change (1 client, 2 day, 3 model, 4–8 the counts' deltas).
    static let add = Statement("""
        INSERT INTO usage_daily (client_id, day, model, generations, video_seconds, succeeded, failed, cancelled)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \(upsertSuffix)
        """)

    static func use(sums: some StoredRow) throws -> BudgetUse {
        var use = BudgetUse()
        use.generationsToday = try sums.integer("generations_today")
        use.videoSecondsToday = try sums.integer("video_seconds_today")
        use.generationsThisMonth = try sums.integer("generations_month")
        use.videoSecondsThisMonth = try sums.integer("video_seconds_month")
        use.inFlight = try sums.integer("in_flight")
        return use
    }

    /// A row of `usage_daily`, or with `paid` of `upstream_usage_daily` (which has its key and no cancellations).
    static func record(_ row: some StoredRow, paid: Bool = false) throws -> UsageRecord {
        UsageRecord(clientID: try row.text("client_id"), day: try row.text("day"), model: try row.text("model"),
                    counts: UsageCounts(generations: try row.integer("generations"), videoSeconds: try row.integer("video_seconds"),
                                        succeeded: try row.integer("succeeded"), failed: try row.integer("failed"),
                                        cancelled: paid ? 0 : try row.integer("cancelled")),
                    upstreamKey: paid ? try row.text("upstream_key") : nil)
    }
}

extension UsageLedger where Self: StatementRunner {
    public func setBudget(_ budget: ClientBudget, clientID: String) async throws -> Bool {
        try await changed(UsageStatements.setBudget, [budget.isUnlimited ? nil : budget.text, clientID]) == 1
    }

    public func usage(_ scope: ClientScope, from: String, through: String) async throws -> [UsageRecord] {
        try await rows(UsageStatements.usage, [scope, from, through]) { try UsageStatements.record($0) }
    }

    public func upstreamUsage(_ scope: ClientScope, from: String, through: String) async throws -> [UsageRecord] {
        try await rows(UsageStatements.paid, [scope, from, through]) { try UsageStatements.record($0, paid: true) }
    }

    public func budgetStanding(clientID: String, at now: Date) async throws -> BudgetStanding? {
        try await first(UsageStatements.standing, UsageWindow(at: now).arguments(clientID: clientID)) { row in
            BudgetStanding(budget: try row.optionalText("budget").map(ClientBudget.init(parsing:)) ?? .unlimited,
                           use: try UsageStatements.use(sums: row))
        }
    }
}
