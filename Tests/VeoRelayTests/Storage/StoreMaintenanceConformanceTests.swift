import Foundation
import Testing
@testable import VeoRelay

/// Maintenance (`StoreMaintenance`): migrations, claim plans, retention, backlog and readiness.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Maintenance conformance", .stopsWhatItStarts)
struct StoreMaintenanceConformanceTests {
    @Test(arguments: TestStores.all)
    func migrationsBuildAnEmptyDatabaseAndRunAgainAsANoOp(store kind: TestStores.Kind) async throws {
        let location = try await kind.freshLocation()
        let first = try await StoreLocation.open(location, logger: TestLog.logger, deadline: TestStores.deadline)
        #expect(try await first.clientCount() == 0)
        #expect(try await first.clients().isEmpty)
        first.close()
        let again = try await StoreLocation.open(location, logger: TestLog.logger, deadline: TestStores.deadline)
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
            #expect(plans[2].plan.contains("USING INDEX deliveries_due"), "\(plans[2].plan)")
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

    /// The console's charts: what happened, slot by slot, with the notification lag's percentiles.
    @Test(arguments: TestStores.all)
    func activityCountsEachSlotAndTheLagOfDeliveredWebhooks(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        // Slot 0: one task accepted; it succeeds and its webhook is delivered 4 s after completion, in slot 1.
        _ = try await fixture.finishedTask("charted")
        let lease = fixture.lease("a/dispatcher/1", until: 60)
        let event = try #require(try await store.claimDeliveries(now: fixture.t0, limit: 1, lease: lease, excluding: []).first)
        var attempt = fixture.attempt(event.eventID, status: 204)
        attempt.attemptedAt = fixture.t0.addingTimeInterval(64)
        try await store.recordAttempt(attempt, resolution: .delivered, lease: lease)
        // Slot 2: a task accepted and failed by the upstream.
        var failing = try fixture.task("upstream failure", due: 0)
        failing.createdAt = fixture.t0.addingTimeInterval(125)
        _ = try await store.insert(failing, idempotency: nil)
        let submitter = fixture.lease("b/submitter/1", until: 300)
        var claimed = try #require(try await store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(130), limit: 1, lease: submitter).first)
        _ = claimed.fail(.upstreamRejected, message: "no", at: fixture.t0.addingTimeInterval(130))
        try await store.save(claimed, lease: submitter, keepLease: false, event: nil)

        let report = try await store.activity(from: fixture.t0, slot: 60, count: 3)
        #expect(report.accepted == [1, 0, 1])
        #expect(report.succeeded == [1, 0, 0] && report.failed == [0, 0, 1] && report.upstreamErrors == [0, 0, 1])
        #expect(report.webhookAttempts == [0, 1, 0] && report.webhooksAccepted == [0, 1, 0])
        #expect(report.lagP50 == [nil, 64, nil] && report.lagP95 == [nil, 64, nil], "completed at t0, delivered at t0 + 64 s")
        #expect(try await store.activity(from: fixture.t0.addingTimeInterval(-600), slot: 60, count: 5).accepted == [0, 0, 0, 0, 0],
                "a window before anything happened")
        store.close()
    }
}
