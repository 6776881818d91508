import AsyncHTTPClient
import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Upstream engine")
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
        var task = try await store.claimTasks(.submission, now: now, limit: 1, lease: lease)[0]
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

@Suite("Upstream protection and poll scheduling")
struct UpstreamGateTests {
    @Test func theBudgetRefillsAtItsRateAndCapsBursts() {
        let clock = ManualClock.startingNow()
        var policy = UpstreamGate.Policy()
        policy.rate = 4
        policy.burst = 2
        let gate = UpstreamGate(policy: policy, clock: clock)
        #expect(gate.take(upTo: 10) == 2)
        #expect(gate.take(upTo: 10) == 0)
        clock.advance(by: 0.5)
        #expect(gate.take(upTo: 10) == 2)
        clock.advance(by: 10)
        #expect(gate.take(upTo: 10) == 2, "a long quiet spell still allows only a burst")
        gate.refund(1)
        #expect(gate.take(upTo: 10) == 1)
    }

    @Test func theBreakerPausesAllTrafficAndProbesBeforeResuming() {
        let clock = ManualClock.startingNow()
        var policy = UpstreamGate.Policy()
        policy.rate = 1_000
        policy.burst = 1_000
        policy.breaker = CircuitBreaker.Policy(failureThreshold: 3, cooldown: 5, maxCooldown: 60)
        let gate = UpstreamGate(policy: policy, clock: clock)
        for _ in 0..<3 { gate.record(.failed) }
        #expect(gate.isOpen())
        #expect(gate.take(upTo: 10) == 0, "paused: no task spends a retry")
        clock.advance(by: 5)
        #expect(gate.take(upTo: 10) == 1, "one probe")
        #expect(gate.take(upTo: 10) == 0, "and nothing else while it is out")
        gate.refund(1)
        #expect(gate.take(upTo: 10) == 1, "a probe that was never sent does not block the next one")
        gate.record(.answered)
        #expect(gate.take(upTo: 10) == 10, "resumed on its own")
        gate.record(.throttled(retryAfter: 30))
        #expect(gate.take(upTo: 10) == 0, "a 429's Retry-After pauses everyone")
        clock.advance(by: 30)
        #expect(gate.take(upTo: 10) == 1)
    }

    @Test func theScheduleAimsAtTheCompletionProgressAllowsAndClosesInOnEstimates() throws {
        let estimates = DurationEstimates(defaults: [.fast: 60, .quality: 120])
        var policy = PollPolicy()
        policy.floor = 1
        policy.ceiling = 60
        policy.approach = 0.8
        let schedule = PollSchedule(policy: policy, estimates: estimates)
        let start = Date(timeIntervalSince1970: 1_000)
        var task = RelayTask(clientID: "c", request: try RequestValidator().validate(body: Scenarios.relayBody(Scenarios.all[0].json)), now: start)
        task.beginSubmission()
        task.submitted(UpstreamSubmission(taskID: "u", answer: ""), at: start, firstPollAt: start)

        // First poll: 80 % of the model's early estimate.
        #expect(schedule.firstPoll(for: task, submittedAt: start) == start.addingTimeInterval(48))
        // Progress 75 % after 90 s puts the duration between 90 / 0.76 ≈ 118.4 s and 90 / 0.75 = 120 s.
        // An estimate inside that range is taken as it is; one that the progress contradicts (200 s), or
        // none, gives way to the earliest end the range allows. The poll goes at that moment.
        func wait(progress: Int, estimate: Double?, at elapsed: TimeInterval) -> TimeInterval {
            let now = start.addingTimeInterval(elapsed)
            return schedule.nextPoll(for: task, observed: UpstreamTaskView(status: "processing", progress: progress, estimatedTime: estimate), now: now)
                .timeIntervalSince(now)
        }
        #expect(abs(wait(progress: 75, estimate: 119, at: 90) - 29) < 0.001)
        #expect(abs(wait(progress: 75, estimate: 200, at: 90) - (90 / 0.76 - 90)) < 0.001)
        #expect(abs(wait(progress: 75, estimate: nil, at: 90) - (90 / 0.76 - 90)) < 0.001)
        #expect(wait(progress: 40, estimate: nil, at: 48) == 60, "117 s is more than the ceiling away")
        // 98 % after 90 s: between 90.9 s and 91.8 s, less than the floor apart: the latest end, not
        // a poll at the floor that would likely come too early.
        #expect(abs(wait(progress: 98, estimate: nil, at: 90) - (90 / 0.98 - 90)) < 0.001)
        #expect(wait(progress: 99, estimate: nil, at: 150) == 1, "never more often than the floor")
        let view = UpstreamTaskView(status: "processing", progress: 40, estimatedTime: 200)
        let now = start.addingTimeInterval(48)
        // Closing in on an estimate, it leaves at least the floor for the last step, then aims at the end itself.
        #expect(schedule.wait(remaining: 10) == 8, "80 % of what is left")
        #expect(schedule.wait(remaining: 3) == 2, "80 % would leave less than the floor")
        #expect(schedule.wait(remaining: 1.6) == 1.6)
        #expect(schedule.wait(remaining: 0.4) == 1, "never more often than the floor")
        // Without progress the upstream's estimate decides; overdue tasks are polled at the floor.
        let pending = UpstreamTaskView(status: "pending", progress: 0, estimatedTime: 90)
        #expect(schedule.nextPoll(for: task, observed: pending, now: start.addingTimeInterval(40)) == start.addingTimeInterval(40 + 40))
        #expect(schedule.nextPoll(for: task, observed: pending, now: start.addingTimeInterval(10)) == start.addingTimeInterval(10 + 60),
                "80 % of 80 s is capped at the 60 s ceiling")
        #expect(schedule.nextPoll(for: task, observed: pending, now: start.addingTimeInterval(100)) == start.addingTimeInterval(101))
        // A fixed schedule ignores all of that.
        var fixed = policy
        fixed.mode = .fixed(5)
        #expect(PollSchedule(policy: fixed, estimates: estimates).nextPoll(for: task, observed: view, now: now) == now.addingTimeInterval(5))
    }

    @Test func estimatesAreLearnedFromRecentCompletions() {
        let estimates = DurationEstimates(defaults: [.fast: 60])
        #expect(estimates.early(for: .fast) == 60)
        for seconds in stride(from: 100.0, through: 190, by: 10) { estimates.record(seconds, for: .fast) }
        #expect(estimates.early(for: .fast) == 110, "the 10th percentile of 100…190")
        #expect(estimates.early(for: .quality) == 60, "no default for quality here: the fallback")
    }
}

@Suite("Simulator faults as the relay sees them")
struct SimulatorFaultTests {
    @Test func answersDroppedMidBodyOpenTheUpstreamBreaker() async throws {
        let harness = try await RelayHarness.start()
        var policy = UpstreamGate.Policy()
        policy.breaker = CircuitBreaker.Policy(failureThreshold: 3, cooldown: 60, maxCooldown: 60)
        let gate = UpstreamGate(policy: policy, clock: SystemClock())
        let http = HTTPClient.relayClient(connectTimeout: 1)
        let upstream = UpstreamClient(baseURL: harness.simulatorServer.baseURL, apiKey: RelayHarness.upstreamKey, http: http, gate: gate)
        let taskID = try await upstream.submit(GenerationRequest(model: .fast, prompt: "a cat")).taskID
        harness.simulator.reconfigure { $0.faults.dropped = 1 }
        for attempt in 1...3 {
            #expect(!gate.isOpen(), "closed before failure \(attempt)")
            await #expect(throws: UpstreamError.self) { _ = try await upstream.task(id: taskID) }
        }
        #expect(gate.isOpen(), "three answers lost mid-body are three consecutive failures")
        try await http.shutdown()
        try await harness.stop()
    }

    @Test(arguments: ["dropped", "malformed"])
    func aSpoiledAnswerToASubmissionIsAnUnknownOutcome(_ name: String) async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        if name == "dropped" { simulator.faults.dropped = 1 } else { simulator.faults.malformed = 1 }
        let harness = try await RelayHarness.start(simulator: simulator)
        let relay = try await harness.startRelay()
        _ = try await APIClient(baseURL: relay.baseURL).submit(harness.request())
        let delivery = try await harness.receiver.next()[0]
        #expect(delivery.json["data"]?["error"]?["code"] == .string("submission_outcome_unknown"), "\(name)")
        #expect(harness.simulator.totalSubmissions == 1)
        try await harness.stop(relay)
    }
}
