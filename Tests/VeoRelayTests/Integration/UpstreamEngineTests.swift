import AsyncHTTPClient
import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Upstream engine", .stopsWhatItStarts)
struct UpstreamEngineTests {
    @Test func underA30PercentFaultRateEveryTaskEndsWithOneWebhookAndNothingIsPaidTwice() async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.faults = .spread(0.3)
        simulator.slowResponseDelay = 0.05
        simulator.estimateAccuracy = 0.5...1.5
        let rate = 40.0, burst = 10.0
        let harness = try await RelayHarness.start(simulator: simulator, tune: { configuration in
            configuration.engine.upstream.rate = rate
            configuration.engine.upstream.burst = burst
            configuration.engine.upstream.breaker = CircuitBreaker.Policy(failureThreshold: 5, cooldown: 0.1, maxCooldown: 0.4)
        })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        var accepted: Set<String> = []
        for index in 0..<30 { accepted.insert(try await api.submit(harness.request(prompt: "faulty upstream \(index)"))) }

        let terminal = try await harness.receiver.next(accepted.count, within: .seconds(60))
        let ids = terminal.compactMap { $0.json["data"]?["task_id"]?.stringValue }
        #expect(Set(ids) == accepted, "every accepted task got a terminal webhook")
        #expect(ids.count == Set(ids).count, "exactly one each")
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 1, "no request was submitted twice")
        // The budget itself (at most `burst + rate × window` requests) is proven on an injected clock in
        // `theBudgetRefillsAtItsRateAndCapsBursts`; requests timed here on the wall clock would bunch up
        // on a loaded machine and prove nothing about the relay.
        let outcomes = Dictionary(grouping: terminal) { $0.json["data"]?["error"]?["code"]?.stringValue ?? "succeeded" }.mapValues(\.count)
        #expect((outcomes["succeeded"] ?? 0) > accepted.count / 2, "\(outcomes)")
        #expect(Set(outcomes.keys).isSubset(of: ["succeeded", "submission_outcome_unknown"]), "\(outcomes)")
        try await harness.stop(relay)
    }

    @Test func aTimeoutAfterSendingEndsOutcomeUnknownAndOnlyAnOperatorResubmits() async throws {
        let harness = try await RelayHarness.start(tune: { $0.engine.upstreamTimeout = 3 })
        // The first submission reaches the upstream and is never answered: the relay times out.
        harness.simulator.submissions.close(holdingOnly: 1)
        let relay = try await harness.startRelay()
        let taskID = try await APIClient(baseURL: relay.baseURL).submit(harness.request())

        let failed = try await harness.receiver.next()[0]
        #expect(failed.json["type"] == .string("task.failed"))
        #expect(failed.json["data"]?["error"]?["code"] == .string("submission_outcome_unknown"))
        #expect(harness.simulator.submissions.arrived == 1, "the upstream got it once")
        #expect(harness.simulator.totalSubmissions == 0, "and the relay did not resend it")

        // The operator decides to pay again.
        #expect(try await SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline).resubmit(taskID: taskID, now: Date()))
        let succeeded = try await harness.receiver.next()[0]
        #expect(succeeded.json["type"] == .string("task.succeeded"))
        #expect(succeeded.json["data"]?["task_id"] == .string(taskID))
        #expect(harness.simulator.totalSubmissions == 1)
        harness.simulator.submissions.open()
        try await harness.stop(relay)
    }

    @Test func anIdempotencyKeyReturnsTheSameTaskAndRefusesADifferentBody() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let key = [("Idempotency-Key", "order-1234")]
        let body = try JSONCoding.encode(harness.request(prompt: "once only"))
        let first = try await api.send(.POST, "/v1/videos/generations", body: body, headers: key)
        #expect(first.status == 200)
        // The same request again, keys in another order: the same task.
        var reordered = try #require(String(data: body, encoding: .utf8))
        reordered = reordered.replacingOccurrences(of: "{", with: "{ ", options: [], range: reordered.startIndex..<reordered.index(after: reordered.startIndex))
        let again = try await api.send(.POST, "/v1/videos/generations", body: Data(reordered.utf8), headers: key)
        #expect(again.status == 200)
        #expect(again.taskID == first.taskID)
        #expect(again.headers["idempotent-replayed"] == "true")

        let different = try await api.send(.POST, "/v1/videos/generations",
                                           body: try JSONCoding.encode(harness.request(prompt: "something else")), headers: key)
        #expect(different.status == 409)
        #expect(different.json["error"]?["param"] == .string("Idempotency-Key"))

        // Keys are per client: another client's identical key is its own task.
        let other = try await APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey)
            .send(.POST, "/v1/videos/generations", body: body, headers: key)
        #expect(other.status == 200)
        #expect(other.taskID != first.taskID)

        _ = try await harness.receiver.next(2)
        #expect(harness.simulator.totalSubmissions == 2)
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 2, "the same body, once per client")
        try await harness.stop(relay)
    }

    @Test func expiredIdempotencyKeysAreForgotten() async throws {
        let clock = ManualClock.startingNow()
        let store = try SQLiteStore(path: FileManager.default.temporaryDirectory.appendingPathComponent("idem-\(UUID()).sqlite").path, deadline: TestStores.deadline)
        let request = try RequestValidator().validate(body: Scenarios.relayBody(Scenarios.all[0].json))
        let key = IdempotencyKey(key: "k", fingerprint: "f")
        #expect(try await store.insert(RelayTask(clientID: "c", request: request, now: clock.now()), idempotency: key) == .created)
        let retention = RetentionService(store: store, clock: clock, attemptRetention: 86_400, idempotencyRetention: 86_400,
                                         logger: TestLog.logger)
        clock.advance(by: 86_000)
        #expect(try await retention.prune().idempotencyKeys == 0, "kept for at least 24 h")
        clock.advance(by: 401)
        #expect(try await retention.prune().idempotencyKeys == 1)
        #expect(try await store.insert(RelayTask(clientID: "c", request: request, now: clock.now()), idempotency: key) == .created)
    }

    @Test func aTaskPastItsDeadlineFailsWithTimeout() async throws {
        // Jobs take 60–180 s; the deadline is a fraction of a second.
        let harness = try await RelayHarness.start(simulator: SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 1),
                                                   tune: {
                                                       $0.engine.deadlines.minimum = 0.2
                                                       $0.engine.deadlines.maximum = 0.3
                                                   })
        let relay = try await harness.startRelay()
        _ = try await APIClient(baseURL: relay.baseURL).submit(harness.request())
        let delivery = try await harness.receiver.next()[0]
        #expect(delivery.json["type"] == .string("task.failed"))
        #expect(delivery.json["data"]?["error"]?["code"] == .string("timeout"))
        try await harness.stop(relay)
    }

    @Test func anUpstreamThatForgetsATaskIsAskedAFewTimesThenTheTaskEnds() async throws {
        let harness = try await RelayHarness.start()
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        let now = Date()
        let request = try RequestValidator().validate(harness.request())
        _ = try await store.insert(RelayTask(clientID: RelayHarness.clientID, request: request, now: now), idempotency: nil)
        let lease = Lease(owner: "seed", expiresAt: now.addingTimeInterval(60))
        var task = try await store.claimTasks(.submission(), now: now, limit: 1, lease: lease)[0]
        task.beginSubmission()
        task.submitted(UpstreamSubmission(taskID: "task_the_upstream_never_heard_of", answer: ""), at: now, firstPollAt: now)
        try await store.save(task, lease: lease, keepLease: false, event: nil)

        let relay = try await harness.startRelay()
        let delivery = try await harness.receiver.next()[0]
        #expect(delivery.json["data"]?["error"]?["code"] == .string("upstream_task_not_found"))
        #expect(harness.simulator.totalPolls == harness.configuration.engine.notFoundLimit)
        try await harness.stop(relay)
    }
}
