import Foundation
import Testing
@testable import VeoRelay

@Suite("Upstream accounts conformance", .stopsWhatItStarts)
struct UpstreamAccountsConformanceTests {
    /// A hold begins once, keeps the newest reason, stops its key's submission claim but not the probe's
    /// nor another key's, gives each probe to one caller only, and ends with its start time.
    @Test(arguments: TestStores.all)
    func aHoldStopsItsKeysSubmissionsAndItsProbesGoOneAtATime(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        let t0 = fixture.t0
        for prompt in ["first", "second", "third"] { _ = try await store.insert(try fixture.task(prompt, due: 0), idempotency: nil) }
        #expect(try await store.accountHolds().isEmpty)
        let began = try await store.holdAccount(key: "default", reason: "HTTP 402: broke", at: t0, firstProbeAt: t0.addingTimeInterval(5))
        #expect(began.began && began.nextProbeAt == t0.addingTimeInterval(5))
        let again = try await store.holdAccount(key: "default", reason: "HTTP 402: still broke", at: t0.addingTimeInterval(1),
                                                firstProbeAt: t0.addingTimeInterval(6))
        #expect(!again.began && again.nextProbeAt == t0.addingTimeInterval(5), "a hold under way is not begun again, nor its probe moved")
        let hold = try #require(try await store.accountHolds().first)
        #expect(hold == AccountHold(key: "default", reason: "HTTP 402: still broke", since: t0, nextProbeAt: t0.addingTimeInterval(5), probes: 0))

        let later = t0.addingTimeInterval(10)
        #expect(try await store.claimTasks(.submission(), now: later, limit: 2, lease: fixture.lease("a/submitter/1", until: 60)).isEmpty,
                "no submission with a held key")
        #expect(try await store.takeAccountProbe(hold, next: t0.addingTimeInterval(20)))
        #expect(try await store.takeAccountProbe(hold, next: t0.addingTimeInterval(20)) == false, "each probe goes to one caller")
        #expect(try await store.accountHolds().first?.probes == 1)
        let probe = try await store.claimTasks(.accountProbe(.configured), now: later, limit: 1, lease: fixture.lease("a/submitter/2", until: 60))
        #expect(probe.count == 1 && probe.first?.state == .queued && probe.first?.upstreamKey == "default")

        let spare = KeyShare(key: "spare")
        let other = try await store.claimTasks(.submission(spare), now: later, limit: 1, lease: fixture.lease("a/submitter/3", until: 60))
        #expect(other.count == 1 && other.first?.upstreamKey == "spare", "another key's claim is not held, and names its key")

        #expect(try await store.releaseAccount(key: "default", at: later) == t0)
        #expect(try await store.releaseAccount(key: "default", at: later) == nil)
        #expect(try await store.accountHolds().isEmpty)
        #expect(try await store.claimTasks(.submission(), now: later, limit: 2, lease: fixture.lease("a/submitter/4", until: 60)).count == 1,
                "the last task flows once the hold ends (the others are leased)")
        store.close()
    }

    /// Stored keys: added once by name, listed with their limits, disabled and enabled; a key's limit
    /// counts its tasks in flight (claimed under a live lease, submitting or running); a client's own
    /// key carries its tasks only, and no shared key carries them; a key is removed only once no
    /// unfinished task was submitted with it.
    @Test(arguments: TestStores.all)
    func keysCarryTheirOwnTasksWithinTheirLimits(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        let t0 = fixture.t0
        let owner = Client(id: "client-2", name: "two", signingSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        try await store.upsertClient(owner, keyHash: "hash-2", now: t0)
        let limited = UpstreamKey(name: "limited", secret: "sk-limited-1234", maxInFlight: 2, rate: 1.5, createdAt: t0)
        let own = UpstreamKey(name: "own", secret: "sk-own-5678", clientID: owner.id, createdAt: t0.addingTimeInterval(1))
        #expect(try await store.addUpstreamKey(limited))
        #expect(try await store.addUpstreamKey(own))
        #expect(try await store.addUpstreamKey(limited) == false, "a name is taken once")
        #expect(try await store.upstreamKeys() == [limited, own])
        #expect(try await store.setUpstreamKey("own", enabled: false))
        #expect(try await store.upstreamKeys().last?.enabled == false)
        #expect(try await store.setUpstreamKey("own", enabled: true))
        #expect(try await store.setUpstreamKey("none", enabled: true) == false)

        for prompt in ["a", "b", "c"] { _ = try await store.insert(try fixture.task(prompt, due: 0), idempotency: nil) }
        var owned = try fixture.task("owned", due: 0)
        owned.clientID = owner.id
        _ = try await store.insert(owned, idempotency: nil)

        let now = t0.addingTimeInterval(1)
        let first = try await store.claimTasks(.submission(KeyShare(limited)), now: now, limit: 5, lease: fixture.lease("a/submitter/1", until: 60))
        #expect(first.count == 2 && first.allSatisfy { $0.upstreamKey == "limited" && $0.clientID == fixture.client.id },
                "two of the shared client's three tasks, none of the client with its own key")
        #expect(try await store.upstreamKeysInFlight(now: now) == ["limited": 2])
        #expect(try await store.claimTasks(.submission(KeyShare(limited)), now: now, limit: 5, lease: fixture.lease("b/submitter/1", until: 60)).isEmpty,
                "the key is full, whoever claims")
        let mine = try await store.claimTasks(.submission(KeyShare(own)), now: now, limit: 5, lease: fixture.lease("b/submitter/2", until: 60))
        #expect(mine.map(\.id) == [owned.id] && mine.first?.upstreamKey == "own")

        // One is sent and runs; the other's lease runs out unsent: the key has room for one more.
        var sent = first[0]
        sent.beginSubmission()
        sent.submitted(UpstreamSubmission(taskID: "up-1", answer: "{}"), at: now, firstPollAt: now.addingTimeInterval(30))
        try await store.save(sent, lease: fixture.lease("a/submitter/1", until: 60), keepLease: false, event: nil)
        let afterLease = t0.addingTimeInterval(61)
        #expect(try await store.upstreamKeysInFlight(now: afterLease) == ["limited": 1])
        let again = try await store.claimTasks(.submission(KeyShare(limited)), now: afterLease, limit: 5, lease: fixture.lease("c/submitter/1", until: 120))
        #expect(again.count == 1)

        #expect(try await store.removeUpstreamKey("limited") == .inUse(tasks: 1), "a running task is still polled with it")
        #expect(try await store.removeUpstreamKey("own") == .removed)
        #expect(try await store.removeUpstreamKey("own") == .notFound)
        store.close()
    }

    /// A submitted task's end counts a paid generation on the row of the key that sent it; an end
    /// without a submission (nothing paid) counts none.
    @Test(arguments: TestStores.all)
    func paidGenerationsAreCountedByKey(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let day = UsagePeriod.day(of: fixture.t0)
        #expect(try await fixture.store.upstreamUsage(.allClients, from: day, through: day).isEmpty)
        _ = try await fixture.finishedTask("paid")
        let paid = try await fixture.store.upstreamUsage(.client(fixture.client.id), from: day, through: day)
        #expect(paid == [UsageRecord(clientID: fixture.client.id, day: day, model: "veo3.1-fast-official",
                                     counts: UsageCounts(generations: 1, videoSeconds: 8, succeeded: 1), upstreamKey: "default")])
        #expect(try await fixture.store.upstreamUsage(.client("someone-else"), from: day, through: day).isEmpty)
        fixture.store.close()
    }
}
