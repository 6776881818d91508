import Foundation
import Testing
@testable import VeoRelay

/// Maintenance (`StoreMaintenance`): migrations, claim plans, retention, backlog and readiness.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Maintenance conformance")
struct StoreMaintenanceConformanceTests {
    @Test(arguments: TestStores.all)
    func migrationsBuildAnEmptyDatabaseAndRunAgainAsANoOp(store kind: TestStores.Kind) async throws {
        let location = try await kind.freshLocation()
        let first = try await StoreLocation.open(location, logger: TestLog.logger)
        #expect(try await first.clientCount() == 0)
        #expect(try await first.clients().isEmpty)
        first.close()
        let again = try await StoreLocation.open(location, logger: TestLog.logger)
        #expect(try await again.clientCount() == 0)
        again.close()
    }

    /// The plans come from the very queries the claims run; on SQLite each uses its due-time index
    /// even on an empty table (PostgreSQL's planner rightly scans a tiny table; the benchmark shows
    /// its plans at a million rows).
    @Test(arguments: TestStores.all)
    func everyClaimQueryCanBeExplained(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let plans = try await fixture.store.explainClaims(now: Date())
        #expect(plans.map(\.claim) == ["submission", "poll", "delivery"])
        #expect(plans.allSatisfy { !$0.plan.isEmpty })
        if kind == .sqlite {
            #expect(plans[0].plan.contains("USING INDEX tasks_due"), "\(plans[0].plan)")
            #expect(plans[1].plan.contains("USING INDEX tasks_due"), "\(plans[1].plan)")
            #expect(plans[2].plan.contains("USING INDEX events_due"), "\(plans[2].plan)")
        }
    }

    /// The backlog the metrics report: tasks by state, and the most overdue item of each stage.
    @Test(arguments: TestStores.all)
    func theBacklogCountsStatesAndFindsTheOldestDueWork(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        try await fixture.store.checkReady()
        #expect(try await fixture.store.backlog(now: fixture.t0) == BacklogStatistics())
        for due in [3.0, 5.0, 100.0] { _ = try await fixture.store.insert(try fixture.task("queued \(due)", due: due), idempotency: nil) }
        _ = try await fixture.finishedTask("delivering")
        let backlog = try await fixture.store.backlog(now: fixture.t0.addingTimeInterval(10))
        #expect(backlog.tasksByState == [.queued: 3, .succeeded: 1])
        #expect(backlog.oldestDueSubmission == fixture.t0.addingTimeInterval(3))
        #expect(backlog.oldestDuePoll == nil)
        #expect(backlog.oldestDueDelivery == fixture.t0, "the succeeded task's event is due since it was written")
        fixture.store.close()
    }
}
