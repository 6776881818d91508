import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Graceful shutdown", .stopsWhatItStarts)
struct ShutdownTests {
    /// Stages stop one after another (submitter, poller, dispatcher). Each must give back only its
    /// own leases once it is done: a stage that gave back everyone's let another instance re-send
    /// a webhook whose 2xx had just been received (seen on PostgreSQL under load).
    @Test(arguments: TestStores.all)
    func aStopWithWorkInEveryStageReleasesNothingEarlyAndSendsNothingTwice(store kind: TestStores.Kind) async throws {
        let delivering = Latch()
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.holdJobs = true
        let harness = try await RelayHarness.start(simulator: simulator, receiverAnswer: { _ in
            await delivering.wait()
            return .init(status: .noContent)
        }, database: try await kind.freshLocation())
        harness.simulator.polls.close()
        let capture = LogCapture()
        let first = try await harness.startRelay(instance: "relay-a", logger: capture.logger)
        let api = APIClient(baseURL: first.baseURL)

        // X: its `task.submitted` webhook hangs at the receiver, its first poll hangs upstream.
        let x = try await api.submit(harness.request(prompt: "in flight at the dispatcher and the poller", extra: [
            "callback_events": .array([.string("task.submitted"), .string("task.succeeded")])]))
        #expect(try await harness.receiver.next()[0].json["data"]?["task_id"] == .string(x))
        await harness.simulator.polls.arrivals(atLeast: 1)
        // Z: its submission hangs upstream.
        harness.simulator.submissions.close()
        let z = try await api.submit(harness.request(prompt: "in flight at the submitter"))
        await harness.simulator.submissions.arrivals(atLeast: 1)

        let stopping = Task { try await first.stop() }
        harness.simulator.submissions.open()
        try await capture.line(containing: "worker stopped", "submitter")

        // What another instance would find now: nothing of X's, because the poller and the
        // dispatcher are still working on it.
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        let probe = Lease(owner: "relay-b/probe/1", expiresAt: harness.clock.now().addingTimeInterval(60))
        let claimable = try await store.claimTasks(.poll, now: harness.clock.now(), limit: 10, lease: probe).map(\.id)
        let deliverable = try await store.claimDeliveries(now: harness.clock.now(), limit: 10, lease: probe, excluding: [])
        try await store.releaseTaskLeases(ownerPrefix: "relay-b/probe/")
        try await store.releaseDeliveryLeases(ownerPrefix: "relay-b/probe/")
        #expect(!claimable.contains(x), "the poller's lease on X was given back while it polled")
        #expect(deliverable.isEmpty, "the dispatcher's lease on X's event was given back while it delivered")

        harness.simulator.polls.open()
        delivering.open()
        try await stopping.value
        let log = try #require(try await store.deliveryLog(taskID: x, scope: .client(RelayHarness.clientID)))
        #expect(log.map(\.state) == [.delivered], "the 2xx the receiver sent is recorded before the lease goes")
        #expect(try await store.task(id: z, scope: .client(RelayHarness.clientID))?.upstreamTaskID != nil, "Z's submission was recorded")

        // A second relay finishes both jobs: each event arrives once, nothing is paid twice.
        let second = try await harness.startRelay(instance: "relay-b")
        harness.simulator.releaseJobs()
        let finished = try await harness.receiver.next(2)
        #expect(Set(finished.map { "\($0.json["data"]?["task_id"]?.stringValue ?? "?") \($0.json["type"]?.stringValue ?? "?")" })
            == ["\(x) task.succeeded", "\(z) task.succeeded"])
        let ids = harness.receiver.all.map(\.id)
        #expect(ids.count == Set(ids).count, "no webhook-id delivered twice")
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 1)
        store.close()
        try await harness.stop(second)
    }
}
