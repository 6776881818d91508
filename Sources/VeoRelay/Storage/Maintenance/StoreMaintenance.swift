import Foundation

/// What operators and the relay's housekeeping ask of the database as a whole: retention, how it
/// runs its claims, how much work waits, whether it is ready, and closing it.
public protocol StoreMaintenance: Sendable {
    /// Deletes attempt-log entries older than `cutoff`; returns how many.
    func pruneAttempts(before cutoff: Date) async throws -> Int
    /// Forgets idempotency keys first used before `cutoff`; returns how many.
    func pruneIdempotencyKeys(before cutoff: Date) async throws -> Int
    /// The database's plan for each claim query (`EXPLAIN QUERY PLAN`, `EXPLAIN`), to show index use.
    func explainClaims(now: Date) async throws -> [ClaimPlan]
    /// Tasks by state and the oldest due work of each stage, as of `now`.
    func backlog(now: Date) async throws -> BacklogStatistics
    /// What happened in `count` slots of `slot` seconds from `start` (the console's charts).
    func activity(from start: Date, slot: TimeInterval, count: Int) async throws -> ActivityReport
    /// Returns when the database answers and holds every migration this build knows (readiness);
    /// throws `StoreNotReady` or the database's error otherwise.
    func checkReady() async throws
    /// The database's own clock, for a database that several relays share (PostgreSQL); nil where the
    /// relay's host is the only clock (SQLite).
    func databaseTime() async throws -> Date?
    /// Releases connections; the store is not used afterwards.
    func close()
}

/// How the database runs one claim query.
public struct ClaimPlan: Sendable, Equatable {
    public var claim: String
    public var plan: String
}

/// How much work is waiting, for the metrics operators alert on.
public struct BacklogStatistics: Sendable, Equatable {
    public var tasksByState: [TaskState: Int] = [:]
    /// Due time of the most overdue queued submission, poll and pending delivery; nil when none is due.
    public var oldestDueSubmission: Date?
    public var oldestDuePoll: Date?
    public var oldestDueDelivery: Date?
}
