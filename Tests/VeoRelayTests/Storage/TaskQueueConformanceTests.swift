import Foundation
import Testing
@testable import VeoRelay

/// The task queue (`TaskQueue`): intake, claims under leases, transitions and their events.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Task queue conformance", .stopsWhatItStarts)
struct TaskQueueConformanceTests {
    @Test(arguments: TestStores.all)
    func tasksRoundTripAndStayWithTheirClient(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        var task = try fixture.task("round trip", due: 0)
        task.metadata = .object(["chat_id": .int(42)])
        #expect(try await fixture.store.insert(task, idempotency: nil) == .created)
        #expect(try await fixture.store.task(id: task.id, scope: .client(fixture.client.id)) == task)
        #expect(try await fixture.store.task(id: task.id, scope: .client("someone-else")) == nil)
        await #expect(throws: StoreError.duplicateTask(task.id)) { try await fixture.store.insert(task, idempotency: nil) }
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func idempotencyKeysReplayConflictAndArePerClient(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let key = IdempotencyKey(key: "k1", fingerprint: "body-a")
        let first = try fixture.task("first", due: 0)
        #expect(try await fixture.store.insert(first, idempotency: key) == .created)
        #expect(try await fixture.store.insert(try fixture.task("again", due: 0), idempotency: key) == .replayed(taskID: first.id))
        #expect(try await fixture.store.insert(try fixture.task("other body", due: 0),
                                               idempotency: IdempotencyKey(key: "k1", fingerprint: "body-b")) == .conflict)
        var foreign = try fixture.task("another client", due: 0)
        foreign.clientID = "client-2"
        #expect(try await fixture.store.insert(foreign, idempotency: key) == .created, "keys are per client")
        #expect(try await fixture.store.pruneIdempotencyKeys(before: fixture.t0) == 0, "kept until their cutoff")
        #expect(try await fixture.store.pruneIdempotencyKeys(before: fixture.t0.addingTimeInterval(1)) == 2)
        #expect(try await fixture.store.insert(try fixture.task("after pruning", due: 0), idempotency: key) == .created)
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func claimsTakeTheMostOverdueFirstAndNeverTheSameRowTwice(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let later = try fixture.task("due second", due: 2)
        let sooner = try fixture.task("due first", due: 1)
        let last = try fixture.task("due third", due: 3)
        let future = try fixture.task("not due yet", due: 100)
        for task in [later, sooner, last, future] { _ = try await fixture.store.insert(task, idempotency: nil) }
        let now = fixture.t0.addingTimeInterval(5)
        let a = try await fixture.store.claimTasks(.submission(), now: now, limit: 2, lease: fixture.lease("a/submitter/1", until: 60))
        #expect(a.map(\.id) == [sooner.id, later.id])
        let b = try await fixture.store.claimTasks(.submission(), now: now, limit: 10, lease: fixture.lease("b/submitter/1", until: 60))
        #expect(b.map(\.id) == [last.id], "leased rows are not claimed again; rows not yet due are not claimed")
        #expect(try await fixture.store.claimTasks(.poll, now: now, limit: 10, lease: fixture.lease("b/poller/1", until: 60)).isEmpty,
                "queued tasks are not polled")
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func anExpiredLeaseIsTakenOverAndItsOldOwnerCanNoLongerWrite(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        _ = try await fixture.store.insert(try fixture.task("contested", due: 0), idempotency: nil)
        let old = fixture.lease("a/poller/1", until: 10)
        var claimed = try #require(try await fixture.store.claimTasks(.submission(), now: fixture.t0, limit: 1, lease: old).first)
        let newer = fixture.lease("b/submitter/1", until: 70)
        #expect(try await fixture.store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(5), limit: 1, lease: newer).isEmpty)
        let taken = try await fixture.store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(11), limit: 1, lease: newer)
        #expect(taken.map(\.id) == [claimed.id])
        claimed.retry(at: fixture.t0.addingTimeInterval(20))
        await #expect(throws: StoreError.leaseLost(claimed.id)) {
            try await fixture.store.save(claimed, lease: old, keepLease: false, event: nil)
        }
        try await fixture.store.save(claimed, lease: newer, keepLease: false, event: nil)
        #expect(try await fixture.store.task(id: claimed.id, scope: .client(fixture.client.id))?.failures == 1)
        fixture.store.close()
    }

    /// Queued tasks and submissions whose lease expired are two index ranges, each cut to the limit
    /// before they are merged: the claim still takes the earliest due of both, and no more.
    @Test(arguments: TestStores.all)
    func aSubmissionClaimMergesQueuedAndAbandonedTasksInDueOrder(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let abandoned = try fixture.task("abandoned on the wire", due: 2)
        let queued = try [1, 3, 4].map { try fixture.task("queued \($0)", due: TimeInterval($0)) }
        for task in [abandoned] + queued { _ = try await fixture.store.insert(task, idempotency: nil) }
        let first = fixture.lease("a/submitter/1", until: 10)
        var onTheWire = try #require(try await fixture.store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(2), limit: 2, lease: first)
            .first { $0.id == abandoned.id })
        onTheWire.beginSubmission()
        try await fixture.store.save(onTheWire, lease: first, keepLease: true, event: nil)
        try await fixture.store.releaseTaskLeases(ownerPrefix: "a/submitter/")
        // At t0 + 11 the first lease has expired: due order is queued 1, abandoned (2), queued 3, queued 4.
        let claimed = try await fixture.store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(11), limit: 3,
                                                         lease: fixture.lease("b/submitter/1", until: 70))
        #expect(claimed.map(\.id) == [queued[0].id, abandoned.id, queued[1].id])
        #expect(claimed.map(\.state) == [.queued, .submitting, .queued])
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func aSubmittingTaskKeepsItsLeaseUntilItExpiresAndLateAnswersAreRecorded(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        _ = try await fixture.store.insert(try fixture.task("on the wire", due: 0), idempotency: nil)
        let lease = fixture.lease("a/submitter/1", until: 30)
        var task = try #require(try await fixture.store.claimTasks(.submission(), now: fixture.t0, limit: 1, lease: lease).first)
        task.beginSubmission()
        try await fixture.store.save(task, lease: lease, keepLease: true, event: nil)
        try await fixture.store.releaseTaskLeases(ownerPrefix: "a/submitter/")
        let other = fixture.lease("b/submitter/1", until: 90)
        #expect(try await fixture.store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(1), limit: 1, lease: other).isEmpty,
                "only the lease's expiry may decide the outcome is unknown")
        let orphan = try await fixture.store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(31), limit: 1, lease: other)
        #expect(orphan.map(\.state) == [.submitting])

        let late = UpstreamSubmission(taskID: "upstream-1", answer: #"{"task_id":"upstream-1"}"#)
        #expect(try await fixture.store.recordLateSubmission(taskID: task.id, late))
        #expect(try await fixture.store.recordLateSubmission(taskID: task.id, UpstreamSubmission(taskID: "upstream-2", answer: "")) == false,
                "a recorded upstream id is never overwritten")
        let stored = try #require(try await fixture.store.task(id: task.id, scope: .client(fixture.client.id)))
        #expect(stored.upstreamTaskID == "upstream-1")
        #expect(stored.submissionAnswer == late.answer)
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func releasingLeasesGivesBackOnlyThatStagesRows(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let polled = try await fixture.runningTask("held by the poller", lease: fixture.lease("a/poller/1", until: 60))
        let delivering = try await fixture.finishedTask("held by the dispatcher")
        let dispatcherLease = fixture.lease("a/dispatcher/1", until: 60)
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: dispatcherLease, excluding: []).count == 1)

        try await fixture.store.releaseTaskLeases(ownerPrefix: "a/submitter/")
        let probe = fixture.lease("b/probe/1", until: 60)
        #expect(try await fixture.store.claimTasks(.poll, now: fixture.t0, limit: 10, lease: probe).isEmpty)
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: probe, excluding: []).isEmpty)
        try await fixture.store.releaseTaskLeases(ownerPrefix: "a/poller/")
        #expect(try await fixture.store.claimTasks(.poll, now: fixture.t0, limit: 10, lease: probe).map(\.id) == [polled.id])
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: probe, excluding: []).isEmpty)
        try await fixture.store.releaseDeliveryLeases(ownerPrefix: "a/dispatcher/")
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: probe, excluding: []).map(\.taskID) == [delivering])
        fixture.store.close()
    }

    /// The poller sleeps until the next poll falls due: the earliest running task nobody holds.
    @Test(arguments: TestStores.all)
    func theNextPollDueIsTheEarliestUnheldRunningTask(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        #expect(try await fixture.store.nextPollDue(now: fixture.t0) == nil, "nothing is running")
        let held = fixture.lease("a/poller/1", until: 60)
        var task = try await fixture.runningTask("soon", lease: held)
        #expect(try await fixture.store.nextPollDue(now: fixture.t0) == nil, "the only running task is held")
        task.nextRunAt = fixture.t0.addingTimeInterval(7)
        try await fixture.store.save(task, lease: held, keepLease: false, event: nil)
        var later = try await fixture.runningTask("later", lease: held)
        later.nextRunAt = fixture.t0.addingTimeInterval(30)
        try await fixture.store.save(later, lease: held, keepLease: false, event: nil)
        #expect(try await fixture.store.nextPollDue(now: fixture.t0) == fixture.t0.addingTimeInterval(7))
        fixture.store.close()
    }

    /// Batches (group commit) write each row on its own terms: a duplicate id fails the whole insert and
    /// is named; a transition or an attempt whose lease was lost is refused while the rest are written;
    /// two transitions of one task in one batch are both written, their events in order.
    @Test(arguments: TestStores.all)
    func batchesWriteEachRowOnItsOwnLease(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let tasks = try (0..<3).map { try fixture.task("batch \($0)", due: 0) }
        #expect(try await fixture.store.insert(tasks.map { TaskInsertion($0, idempotency: nil) }) == [.created, .created, .created])
        let fresh = try fixture.task("fresh", due: 0)
        await #expect(throws: StoreError.duplicateTask(tasks[1].id)) {
            try await fixture.store.insert([TaskInsertion(fresh, idempotency: nil), TaskInsertion(tasks[1], idempotency: nil)])
        }
        #expect(try await fixture.store.task(id: fresh.id, scope: .allClients) == nil, "a failed batch writes nothing")

        let lease = fixture.lease("a/poller/1", until: 60), lost = fixture.lease("b/poller/1", until: 60)
        let claimed = try await fixture.store.claimTasks(.submission(), now: fixture.t0, limit: 3, lease: lease)
        #expect(Set(claimed.map(\.id)) == Set(tasks.map(\.id)))
        func event(_ n: Int) -> NewEvent { NewEvent(type: .taskProgress, payload: Data(#"{"n":\#(n)}"#.utf8), createdAt: fixture.t0) }
        let (first, second, refused, third) = (event(1), event(2), event(3), event(4))
        #expect(try await fixture.store.save([
            TaskTransition(claimed[0], lease: lease, keepLease: true, event: first),
            TaskTransition(claimed[1], lease: lost, keepLease: true, event: refused),
            TaskTransition(claimed[0], lease: lease, keepLease: true, event: second),
            TaskTransition(claimed[2], lease: lease, keepLease: true, event: third),
        ]) == [true, false, true, true])
        #expect(try await fixture.store.streamEvents(taskID: claimed[0].id, after: 0).map { [$0.id: $0.sequence] } == [[first.id: 1], [second.id: 2]])
        #expect(try await fixture.store.streamEvents(taskID: claimed[1].id, after: 0).isEmpty)

        let dispatcher = fixture.lease("a/dispatcher/1", until: 60)
        let due = try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: dispatcher, excluding: [])
        #expect(Set(due.map(\.eventID)) == [first.id, third.id])
        #expect(try await fixture.store.recordAttempts([
            AttemptRecord(fixture.attempt(first.id, status: 204), resolution: .delivered, lease: dispatcher),
            AttemptRecord(fixture.attempt(third.id, status: 204), resolution: .delivered, lease: fixture.lease("b/dispatcher/1", until: 60)),
        ]) == [true, false])
        let log = try #require(try await fixture.store.deliveryLog(taskID: claimed[0].id, scope: .allClients))
        #expect(log.map(\.state) == [.delivered, .pending] && log[0].attemptLog.map(\.statusCode) == [204])
        #expect(try #require(try await fixture.store.deliveryLog(taskID: claimed[2].id, scope: .allClients)).flatMap(\.attemptLog).isEmpty)
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func aFailedTaskCanBeResubmittedByAnOperatorOnly(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let lease = fixture.lease("a/submitter/1", until: 60)
        _ = try await fixture.store.insert(try fixture.task("resubmit", due: 0), idempotency: nil)
        var task = try #require(try await fixture.store.claimTasks(.submission(), now: fixture.t0, limit: 1, lease: lease).first)
        #expect(try await fixture.store.resubmit(taskID: task.id, now: fixture.t0) == false, "only a failed task")
        _ = task.fail(.submissionOutcomeUnknown, message: "lost", at: fixture.t0)
        try await fixture.store.save(task, lease: lease, keepLease: false, event: nil)
        #expect(try await fixture.store.resubmit(taskID: task.id, now: fixture.t0.addingTimeInterval(1)))
        let queued = try #require(try await fixture.store.task(id: task.id, scope: .client(fixture.client.id)))
        #expect(queued.state == .queued && queued.error == nil && queued.upstreamTaskID == nil)
        fixture.store.close()
    }

    /// A task the upstream finished, held for its videos: only the storer's claim takes it, one
    /// holder at a time, it counts as in flight, and its copies are kept with it when it succeeds.
    @Test(arguments: TestStores.all)
    func aTaskBeingStoredIsClaimedByTheStorerOnlyAndKeepsItsCopies(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let poller = fixture.lease("a/poller/1", until: 60)
        var task = try await fixture.runningTask("stored", lease: poller)
        _ = task.observe(UpstreamTaskView(status: "completed", progress: 100), at: fixture.t0, nextPollAt: fixture.t0)
        task.beginStoring(at: fixture.t0)
        try await fixture.store.save(task, lease: poller, keepLease: false, event: nil)
        #expect(try await fixture.store.claimTasks(.poll, now: fixture.t0, limit: 10, lease: fixture.lease("a/poller/2", until: 60)).isEmpty)
        let storer = fixture.lease("a/storer/1", until: 60)
        var claimed = try #require(try await fixture.store.claimTasks(.store, now: fixture.t0, limit: 10, lease: storer).first)
        #expect(claimed.id == task.id && claimed.state == .storing)
        #expect(try await fixture.store.claimTasks(.store, now: fixture.t0, limit: 10, lease: fixture.lease("b/storer/1", until: 60)).isEmpty,
                "one holder at a time")
        #expect(try await fixture.store.budgetStanding(clientID: fixture.client.id, at: fixture.t0)?.use.inFlight == 1, "still in flight")
        let copies = [VideoCopy(index: 0, storedURL: "https://relay.example/v1/tasks/\(task.id)/videos/0", sha256: "ab", bytes: 2_115),
                      VideoCopy(index: 1, storeError: "HTTP 404 from the video host")]
        let type = claimed.stored(copies)
        try await TaskTransitions(store: fixture.store, clock: FixedClock(now: fixture.t0), dispatcherWake: WakeSignal())
            .save(claimed, lease: storer, announcing: type)
        let stored = try #require(try await fixture.store.task(id: task.id, scope: .allClients))
        #expect(stored.state == .succeeded && stored.videoCopies == copies && stored.nextRunAt == nil)
        #expect(try await fixture.store.streamEvents(taskID: task.id, after: 0).map(\.type) == [WebhookEventType.taskSucceeded.rawValue])
        #expect(try await fixture.store.budgetStanding(clientID: fixture.client.id, at: fixture.t0)?.use.inFlight == 0)
    }
}
