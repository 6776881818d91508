import Foundation
import Testing
@testable import VeoRelay

/// A new store (every part) with one client, and helpers that build tasks and events at fixed whole seconds.
struct StoreFixture {
    let store: any RelayStore
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let client = Client(id: "client-1", name: "one", signingSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

    /// On a new database, or on `location` (a new one: the fixture's client is written to it), each
    /// call bounded by `deadline`: by default far beyond what any call takes, as these tests check what the
    /// stores do, not how fast a loaded machine lets them.
    init(_ kind: TestStores.Kind, at location: String? = nil, deadline: Duration = TestStores.deadline) async throws {
        let location = if let location { location } else { try await kind.freshLocation() }
        store = try await StoreLocation.open(location, logger: TestLog.logger, deadline: deadline)
        try await store.upsertClient(client, keyHash: "hash-1", now: t0)
    }

    /// A queued task, due `due` seconds after t0.
    func task(_ prompt: String, due: TimeInterval) throws -> RelayTask {
        let request = try RequestValidator().validate(.object([
            "model": .string("veo3.1-fast-official"), "prompt": .string(prompt), "callback_url": .string("https://hooks.example.com/veo")]))
        var task = RelayTask(clientID: client.id, request: request, now: t0)
        task.nextRunAt = t0.addingTimeInterval(due)
        task.traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        return task
    }

    func lease(_ owner: String, until seconds: TimeInterval) -> Lease {
        Lease(owner: owner, expiresAt: t0.addingTimeInterval(seconds))
    }

    /// An attempt at the delivery of `eventID` to the task's callback.
    func attempt(_ eventID: String, status: Int, to target: DeliveryTarget = .callback) -> DeliveryAttempt {
        DeliveryAttempt(key: DeliveryKey(eventID: eventID, target: target), attemptedAt: t0, statusCode: status, latency: 0.01, error: nil, responseExcerpt: "ok")
    }

    /// A task submitted upstream and claimed for polling under `lease`.
    func runningTask(_ prompt: String, lease: Lease) async throws -> RelayTask {
        _ = try await store.insert(try task(prompt, due: 0), idempotency: nil)
        let submitter = self.lease("setup/submitter/\(prompt)", until: 60)
        var claimed = try #require(try await store.claimTasks(.submission(), now: t0, limit: 1, lease: submitter).first)
        claimed.beginSubmission()
        claimed.submitted(UpstreamSubmission(taskID: "upstream-\(claimed.id)", answer: "{}"), at: t0, firstPollAt: t0)
        try await store.save(claimed, lease: submitter, keepLease: false, event: nil)
        return try #require(try await store.claimTasks(.poll, now: t0, limit: 1, lease: lease).first)
    }

    /// A task that succeeded, with its `task.succeeded` event pending; returns the task id.
    func finishedTask(_ prompt: String) async throws -> String {
        let poller = lease("setup/poller/\(prompt)", until: 60)
        var running = try await runningTask(prompt, lease: poller)
        let type = running.observe(UpstreamTaskView(status: "completed", progress: 100), at: t0, nextPollAt: t0)
        try await TaskTransitions(store: store, clock: FixedClock(now: t0), dispatcherWake: WakeSignal()).save(running, lease: poller, announcing: type)
        return running.id
    }
}

struct FixedClock: WallClock {
    let date: Date
    init(now: Date) { date = now }
    func now() -> Date { date }
}
