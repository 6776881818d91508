import Foundation
import Testing
@testable import VeoRelay

@Suite("Instance registry conformance", .stopsWhatItStarts)
struct InstanceRegistryConformanceTests {
    /// A `submitting` task whose lease expired stays with its owner while the owner is alive; it goes to
    /// the submission claim (to be declared outcome-unknown) once the owner is declared stopped, or once
    /// its heartbeat is older than the silence bound.
    @Test(arguments: TestStores.all)
    func aLiveOwnersSubmissionIsNeverTakenWhateverItsLease(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        try await store.registerInstance(RelayInstance(id: "a", host: "h", pid: 1), now: fixture.t0)
        for prompt in ["stopped owner", "silent owner"] {
            _ = try await store.insert(try fixture.task(prompt, due: 0), idempotency: nil)
        }
        let lease = fixture.lease("a/submitter/1", until: 3)
        for var task in try await store.claimTasks(.submission(), now: fixture.t0, limit: 2, lease: lease) {
            task.beginSubmission()
            try await store.save(task, lease: lease, keepLease: true, event: nil)
        }
        let other = fixture.lease("b/submitter/1", until: 60)
        let later = fixture.t0.addingTimeInterval(20)
        #expect(try await store.heartbeat(instanceID: "a", at: fixture.t0.addingTimeInterval(10)))
        #expect(try await store.claimTasks(.submission(), now: later, limit: 2, lease: other, ownersSilentSince: later.addingTimeInterval(-15)).isEmpty,
                "the lease expired 17 s ago, but the owner's heartbeat 10 s ago says it is alive")
        let silent = try await store.claimTasks(.submission(), now: later, limit: 2, lease: other, ownersSilentSince: later.addingTimeInterval(-5))
        #expect(silent.count == 2 && silent.allSatisfy { $0.state == .submitting }, "silent for longer than the bound: judged gone")

        try await store.registerInstance(RelayInstance(id: "c", host: "h", pid: 2), now: later)
        let third = fixture.lease("c/submitter/1", until: 30)
        _ = try await store.insert(try fixture.task("owner stops", due: 0), idempotency: nil)
        var task = try #require(try await store.claimTasks(.submission(), now: later, limit: 1, lease: third).first)
        task.beginSubmission()
        try await store.save(task, lease: third, keepLease: true, event: nil)
        let afterLease = later.addingTimeInterval(40)
        #expect(try await store.claimTasks(.submission(), now: afterLease, limit: 1, lease: other, ownersSilentSince: later).isEmpty)
        try await store.declareStopped(instanceIDs: ["c"], at: afterLease)
        #expect(try await store.claimTasks(.submission(), now: afterLease, limit: 1, lease: other, ownersSilentSince: later).map(\.id) == [task.id],
                "declared stopped: gone at once")
        #expect(try await store.heartbeat(instanceID: "c", at: afterLease) == false, "a stopped incarnation beats no more")
        store.close()
    }

    /// A claim that takes an abandoned submission may lose its answer (a partition). The task must not
    /// then look owned by the live claimer, which never saw it: once that claim's lease expires, the
    /// task is abandoned again and the next claim takes it.
    @Test(arguments: TestStores.all)
    func anAbandonedSubmissionWhoseClaimWasLostIsTakenAgain(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        for id in ["a", "b"] { try await store.registerInstance(RelayInstance(id: id, host: "h", pid: id == "a" ? 1 : 2), now: fixture.t0) }
        _ = try await store.insert(try fixture.task("owner killed mid-submission", due: 0), idempotency: nil)
        let first = fixture.lease("a/submitter/1", until: 3)
        var task = try #require(try await store.claimTasks(.submission(), now: fixture.t0, limit: 1, lease: first).first)
        task.beginSubmission()
        try await store.save(task, lease: first, keepLease: true, event: nil)
        try await store.declareStopped(instanceIDs: ["a"], at: fixture.t0.addingTimeInterval(1))

        let lost = fixture.lease("b/submitter/2", until: 10)
        let taken = try await store.claimTasks(.submission(), now: fixture.t0.addingTimeInterval(5), limit: 1, lease: lost)
        #expect(taken.map(\.id) == [task.id], "the owner was declared stopped")
        #expect(try await store.heartbeat(instanceID: "b", at: fixture.t0.addingTimeInterval(15)), "the claimer lives on")
        let later = fixture.t0.addingTimeInterval(20)
        let again = try await store.claimTasks(.submission(), now: later, limit: 1, lease: fixture.lease("b/submitter/3", until: 30),
                                               ownersSilentSince: later.addingTimeInterval(-60))
        #expect(again.map(\.id) == [task.id], "the first claim's answer was lost; its lease expired, so the task is taken again")
        #expect(again.first?.state == .submitting)
        store.close()
    }

    @Test(arguments: TestStores.all)
    func instancesAreListedByHostUntilDeclaredStopped(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        for (id, host, pid) in [("a", "h1", 10), ("b", "h1", 11), ("c", "h2", 10)] {
            try await store.registerInstance(RelayInstance(id: id, host: host, pid: pid), now: fixture.t0)
        }
        #expect(try await store.runningInstances(host: "h1").map(\.id) == ["a", "b"])
        try await store.declareStopped(instanceIDs: ["a"], at: fixture.t0)
        #expect(try await store.runningInstances(host: "h1") == [RelayInstance(id: "b", host: "h1", pid: 11)])
        #expect(try await store.runningInstances(host: "h2").map(\.id) == ["c"])
        store.close()
    }

    /// PostgreSQL's clock is the relays' clock; SQLite has none of its own.
    @Test(arguments: TestStores.all)
    func theDatabaseClockIsPostgresOwn(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let time = try await fixture.store.databaseTime()
        switch kind {
        case .sqlite: #expect(time == nil)
        case .postgres: #expect(abs(try #require(time).timeIntervalSinceNow) < 60, "the test server runs on this host")
        }
        fixture.store.close()
    }
}
