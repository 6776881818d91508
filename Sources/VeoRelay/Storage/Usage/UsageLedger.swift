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
    /// Paid generations by the upstream key that sent them, for `scope` between `from` and `through`
    /// (days the tasks were accepted): counted as each submitted task ends, succeeded or failed.
    func upstreamUsage(_ scope: ClientScope, from: String, through: String) async throws -> [UsageRecord]
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

/// The days a moment's usage is counted in: its UTC day, and its month's first and last day.
struct UsageWindow {
    var today: String
    var monthFirst: String
    var monthLast: String

    init(at date: Date) {
        today = UsagePeriod.day(of: date)
        (monthFirst, monthLast) = UsagePeriod.monthDays(of: date)
    }

    /// The arguments of `UsageStatements.sums` for one client.
    func arguments(clientID: String) -> [any SQLBindable] { [clientID, today, monthFirst, monthLast] }
}
