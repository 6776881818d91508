import Foundation
import Testing
@testable import VeoRelay

/// The outbox (`Outbox`): delivery claims in order, attempts, retries, dead letters and replay.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Outbox conformance", .stopsWhatItStarts)
struct OutboxConformanceTests {
    @Test(arguments: TestStores.all)
    func eventsOfOneTaskAreDeliveredInOrderOneAtATime(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let lease = fixture.lease("a/poller/1", until: 60)
        var task = try await fixture.runningTask("two events", lease: lease)
        let first = NewEvent(type: .taskProgress, payload: Data(#"{"n":1}"#.utf8), createdAt: fixture.t0)
        try await fixture.store.save(task, lease: lease, keepLease: true, event: first)
        _ = task.observe(UpstreamTaskView(status: "completed", progress: 100), at: fixture.t0, nextPollAt: fixture.t0)
        let second = NewEvent(type: .taskSucceeded, payload: Data(#"{"n":2}"#.utf8), createdAt: fixture.t0)
        try await fixture.store.save(task, lease: lease, keepLease: false, event: second)

        let dispatcher = fixture.lease("a/dispatcher/1", until: 60)
        let claimed = try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: dispatcher, excluding: [])
        #expect(claimed.map(\.eventID) == [first.id], "the second waits while the first is pending")
        let delivery = try #require(claimed.first)
        #expect(delivery.payload == first.payload)
        #expect(delivery.url == task.callbackURL && delivery.key.target == .callback)
        #expect(delivery.destination == "hooks.example.com:443")
        #expect(delivery.attempts == 0)
        #expect(delivery.signingSecrets == [fixture.client.signingSecret])
        #expect(delivery.traceParent == task.traceParent && task.traceParent != nil, "the attempt continues the task's trace")
        try await fixture.store.recordAttempt(fixture.attempt(first.id, status: 204), resolution: .delivered, lease: dispatcher)
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: dispatcher,
                                                        excluding: ["hooks.example.com:443"]).isEmpty, "an excluded destination is skipped")
        let next = try await fixture.store.claimDeliveries(now: fixture.t0, limit: 10, lease: dispatcher, excluding: [])
        #expect(next.map(\.eventID) == [second.id])
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func releasedDeliveriesGoBackTogetherAndOnlyUnderTheirOwnLease(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        for name in ["one", "two", "three"] { _ = try await fixture.finishedTask(name) }
        let lease = fixture.lease("a/dispatcher/1", until: 60), other = fixture.lease("c/dispatcher/1", until: 60)
        let claimed = try await fixture.store.claimDeliveries(now: fixture.t0, limit: 3, lease: lease, excluding: [])
        try #require(claimed.count == 3)
        let givenBack = claimed.prefix(2).map(\.key.description)
        try await fixture.store.releaseDeliveries(claimed.prefix(2).map(\.key), lease: fixture.lease("b/dispatcher/1", until: 60))
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 3, lease: other, excluding: []).isEmpty,
                "a release under another lease gives nothing back")
        try await fixture.store.releaseDeliveries(claimed.prefix(2).map(\.key), lease: lease)
        let again = try await fixture.store.claimDeliveries(now: fixture.t0, limit: 3, lease: other, excluding: [])
        #expect(Set(again.map(\.key.description)) == Set(givenBack))
        fixture.store.close()
    }

    @Test(arguments: TestStores.all)
    func attemptsRetriesDeadLettersAndReplay(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let taskID = try await fixture.finishedTask("dead letter")
        let lease = fixture.lease("a/dispatcher/1", until: 60)
        let event = try #require(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 1, lease: lease, excluding: []).first)
        await #expect(throws: StoreError.leaseLost(event.key.description)) {
            try await fixture.store.recordAttempt(fixture.attempt(event.eventID, status: 500), resolution: .exhausted,
                                                  lease: fixture.lease("b/dispatcher/1", until: 60))
        }
        try await fixture.store.releaseDeliveries([event.key], lease: lease)
        let again = try #require(try await fixture.store.claimDeliveries(now: fixture.t0, limit: 1, lease: lease, excluding: []).first)
        try await fixture.store.recordAttempt(fixture.attempt(again.eventID, status: 503), resolution: .retry(at: fixture.t0.addingTimeInterval(5)),
                                              lease: lease)
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0.addingTimeInterval(4), limit: 1, lease: lease, excluding: []).isEmpty)
        let retried = try #require(try await fixture.store.claimDeliveries(now: fixture.t0.addingTimeInterval(5), limit: 1, lease: lease,
                                                                           excluding: []).first)
        #expect(retried.attempts == 1)
        var last = fixture.attempt(retried.eventID, status: 500)
        last.attemptedAt = fixture.t0.addingTimeInterval(5)
        try await fixture.store.recordAttempt(last, resolution: .exhausted, lease: lease)

        #expect(try await fixture.store.callbackSummary(taskID: taskID)
            == CallbackSummary(state: "failed", attempts: 2, lastStatusCode: 500, lastError: nil, nextAttemptAt: nil))
        let log = try #require(try await fixture.store.deliveryLog(taskID: taskID, scope: .client(fixture.client.id)))
        #expect(log.map(\.state) == [.failed])
        #expect(log.first?.attemptLog.map(\.statusCode) == [503, 500], "oldest first")
        #expect(try await fixture.store.deliveryLog(taskID: taskID, scope: .client("someone-else")) == nil)
        #expect(try await fixture.store.deliveries(scope: .client(fixture.client.id), state: .failed, limit: 10).map(\.eventID) == [event.eventID])
        #expect(try await fixture.store.deliveries(scope: .client("someone-else"), state: .failed, limit: 10).isEmpty)
        #expect(try await fixture.store.deliveries(scope: .allClients, state: .failed, limit: 10).count == 1, "operators see every client")

        #expect(try await fixture.store.redeliver(taskID: taskID, scope: .client("someone-else"), now: fixture.t0).isEmpty)
        #expect(try await fixture.store.redeliver(taskID: taskID, scope: .client(fixture.client.id), eventID: nil, target: .endpoint("ep_none"),
                                                  now: fixture.t0).isEmpty, "the event never went to that endpoint")
        let replays = try await fixture.store.redeliver(taskID: taskID, scope: .client(fixture.client.id), now: fixture.t0.addingTimeInterval(9))
        #expect(replays.count == 1)
        let replay = try #require(replays.first)
        #expect(replay.eventID == event.eventID && replay.state == .pending && replay.attempts == 0)
        #expect(try await fixture.store.claimDeliveries(now: fixture.t0.addingTimeInterval(9), limit: 1, lease: lease, excluding: [])
            .map(\.eventID) == [event.eventID])

        #expect(try await fixture.store.pruneAttempts(before: fixture.t0.addingTimeInterval(1)) == 1)
        #expect(try await fixture.store.deliveryLog(taskID: taskID, scope: .client(fixture.client.id))?.first?.attemptLog.count == 1)
        fixture.store.close()
    }
}
