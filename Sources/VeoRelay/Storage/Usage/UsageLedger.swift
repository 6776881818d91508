import Foundation

/// Budgets and what clients used of them. The aggregate is written by the task queue in the
/// transactions that accept, end, cancel and resubmit tasks (and the budget is checked in intake's);
/// this part sets the limits and reads the aggregate.
public protocol UsageLedger: Sendable {
    /// Replaces a client's limits (`.unlimited` clears them); false if there is no such client.
    func setBudget(_ budget: ClientBudget, clientID: String) async throws -> Bool
    /// The aggregate's rows for `scope` whose day lies between `from` and `through` (UTC day names,
    /// both included), ordered by day, client and model.
    func usage(_ scope: ClientScope, from: String, through: String) async throws -> [UsageRecord]
    /// A client's limits and what it has used of them at `now`; nil if there is no such client.
    func budgetStanding(clientID: String, at now: Date) async throws -> BudgetStanding?
}

/// A client's limits beside what it has used of the periods that hold a moment.
public struct BudgetStanding: Sendable, Equatable {
    public var budget: ClientBudget
    public var use: BudgetUse

    /// What is left of each limit the client has.
    public var remaining: [BudgetLimit: Int] {
        budget.limits.reduce(into: [:]) { left, limit in left[limit.key] = max(0, limit.value - use[limit.key]) }
    }
}

/// The statements both stores run for usage, with their day arguments worked out once.
struct UsageWindow {
    var today: String
    var monthFirst: String
    var monthLast: String

    init(at date: Date) {
        today = UsagePeriod.day(of: date)
        (monthFirst, monthLast) = UsagePeriod.monthDays(of: date)
    }

    /// Today's and this month's sums of one client, and its tasks in flight (`$1` client, today, month's
    /// first and last day; PostgreSQL's sums of BIGINT are NUMERIC, hence the casts). Tasks are
    /// counted by their accepted day and an end or cancel counts on that day's row, so a client's
    /// tasks in flight are its rows' generations not yet succeeded or failed.
    static let sumsStatement = """
        SELECT CAST(COALESCE(SUM(CASE WHEN day = $2 THEN generations ELSE 0 END), 0) AS BIGINT) AS generations_today,
               CAST(COALESCE(SUM(CASE WHEN day = $2 THEN video_seconds ELSE 0 END), 0) AS BIGINT) AS video_seconds_today,
               CAST(COALESCE(SUM(generations), 0) AS BIGINT) AS generations_month,
               CAST(COALESCE(SUM(video_seconds), 0) AS BIGINT) AS video_seconds_month,
               (SELECT CAST(COALESCE(SUM(generations - succeeded - failed), 0) AS BIGINT) FROM usage_daily
                WHERE client_id = $1 AND \(inFlightRows)) AS in_flight
        FROM usage_daily WHERE client_id = $1 AND day BETWEEN $3 AND $4
        """

    /// The usage rows with tasks in flight, and their index: the sum reads those few rows only.
    static let inFlightRows = "generations > succeeded + failed"
    static let inFlightIndex = "CREATE INDEX usage_daily_in_flight ON usage_daily (client_id) WHERE \(inFlightRows)"

    static func use(sums: some StoredRow) throws -> BudgetUse {
        var use = BudgetUse()
        use.generationsToday = try sums.integer("generations_today")
        use.videoSecondsToday = try sums.integer("video_seconds_today")
        use.generationsThisMonth = try sums.integer("generations_month")
        use.videoSecondsThisMonth = try sums.integer("video_seconds_month")
        use.inFlight = try sums.integer("in_flight")
        return use
    }

    static func record(_ row: some StoredRow) throws -> UsageRecord {
        UsageRecord(clientID: try row.text("client_id"), day: try row.text("day"), model: try row.text("model"),
                    counts: UsageCounts(generations: try row.integer("generations"), videoSeconds: try row.integer("video_seconds"),
                                        succeeded: try row.integer("succeeded"), failed: try row.integer("failed"),
                                        cancelled: try row.integer("cancelled")))
    }

    /// Adds each change to its row (creating it), one statement for the whole batch.
    static let upsertSuffix = """
        ON CONFLICT (client_id, day, model) DO UPDATE SET generations = usage_daily.generations + excluded.generations,
            video_seconds = usage_daily.video_seconds + excluded.video_seconds, succeeded = usage_daily.succeeded + excluded.succeeded,
            failed = usage_daily.failed + excluded.failed, cancelled = usage_daily.cancelled + excluded.cancelled
        """
}
