import Foundation
import Testing
@testable import VeoRelay

@Suite("Upstream accounts conformance")
struct UpstreamAccountsConformanceTests {
    /// A hold begins once, keeps the newest reason, stops the submission claim but not the probe's, gives
    /// each probe to one caller only, and ends with its start time.
    @Test(arguments: TestStores.all)
    func aHoldStopsSubmissionsAndItsProbesGoOneAtATime(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        let t0 = fixture.t0
        for prompt in ["first", "second"] { _ = try await store.insert(try fixture.task(prompt, due: 0), idempotency: nil) }
        #expect(try await store.accountHold() == nil)
        #expect(try await store.holdAccount(reason: "HTTP 402: broke", at: t0, firstProbeAt: t0.addingTimeInterval(5)))
        #expect(try await store.holdAccount(reason: "HTTP 402: still broke", at: t0.addingTimeInterval(1), firstProbeAt: t0.addingTimeInterval(6)) == false,
                "a hold under way is not begun again")
        let hold = try #require(try await store.accountHold())
        #expect(hold == AccountHold(reason: "HTTP 402: still broke", since: t0, nextProbeAt: t0.addingTimeInterval(5), probes: 0))

        let later = t0.addingTimeInterval(10)
        #expect(try await store.claimTasks(.submission, now: later, limit: 2, lease: fixture.lease("a/submitter/1", until: 60)).isEmpty,
                "no submission while the account is held")
        #expect(try await store.takeAccountProbe(hold, next: t0.addingTimeInterval(20)))
        #expect(try await store.takeAccountProbe(hold, next: t0.addingTimeInterval(20)) == false, "each probe goes to one caller")
        #expect(try await store.accountHold()?.probes == 1)
        let probe = try await store.claimTasks(.accountProbe, now: later, limit: 1, lease: fixture.lease("a/submitter/2", until: 60))
        #expect(probe.count == 1 && probe.first?.state == .queued)

        #expect(try await store.releaseAccount() == t0)
        #expect(try await store.releaseAccount() == nil)
        #expect(try await store.accountHold() == nil)
        #expect(try await store.claimTasks(.submission, now: later, limit: 2, lease: fixture.lease("a/submitter/3", until: 60)).count == 1,
                "the other task flows once the hold ends (the probe's is leased)")
        store.close()
    }
}
