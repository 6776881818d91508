import Foundation
import HTTPTypes
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Delivery engine", .stopsWhatItStarts)
struct DeliveryEngineTests {
    /// The production schedule without jitter, so attempt times are exact under the manual clock.
    static func standardSchedule(_ configuration: inout RelayConfiguration) {
        configuration.engine.retrySchedule = RetrySchedule(delays: RetrySchedule.standard.delays, jitter: 0)
    }

    @Test func retriesFollowTheScheduleAndARestartKeepsCountAndNextTime() async throws {
        let clock = ManualClock.startingNow()
        let start = Int(clock.now().timeIntervalSince1970)
        let harness = try await RelayHarness.start(receiverAnswer: { attempt in .init(status: attempt <= 2 ? .badGateway : .ok) },
                                                   clock: clock, tune: Self.standardSchedule)
        let taskID = try await harness.seedFinishedTask()
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        @Sendable func delivery() async throws -> DeliveryRecord? { try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last }

        var relay = try await harness.startRelay(instance: "before-restart")
        let first = try await harness.receiver.next()[0]
        #expect(first.timestamp == start)
        try await eventually("attempt 1 to be recorded") { try await delivery()?.attempts == 1 }
        #expect(try await delivery()?.nextAttemptAt == Date(timeIntervalSince1970: Double(start) + 5))

        clock.advance(by: 5)
        let second = try await harness.receiver.next()[0]
        #expect(second.timestamp == start + 5)
        try await eventually("attempt 2 to be recorded") { try await delivery()?.attempts == 2 }
        try await relay.stop()

        // After the restart the count and the next time are exactly as stored.
        #expect(try await delivery()?.attempts == 2)
        #expect(try await delivery()?.state == .pending)
        #expect(try await delivery()?.nextAttemptAt == Date(timeIntervalSince1970: Double(start) + 305))
        relay = try await harness.startRelay(instance: "after-restart")
        clock.advance(by: 300)
        let third = try await harness.receiver.next()[0]
        #expect(third.timestamp == start + 305)
        #expect(Set([first.id, second.id, third.id]).count == 1)
        try await eventually("delivery on attempt 3") { try await delivery()?.state == .delivered }
        let log = try #require(try await delivery()?.attemptLog)
        #expect(log.map(\.statusCode) == [502, 502, 200])
        #expect(log.map { Int($0.attemptedAt.timeIntervalSince1970) } == [start, start + 5, start + 305])
        try await harness.stop(relay)
    }

    @Test func a429WithRetryAfterWaitsAtLeastThatLong() async throws {
        let clock = ManualClock.startingNow()
        let start = Int(clock.now().timeIntervalSince1970)
        let harness = try await RelayHarness.start(
            receiverAnswer: { attempt in attempt == 1 ? .init(status: .tooManyRequests, headers: [.retryAfter: "120"]) : .init(status: .ok) },
            clock: clock, tune: Self.standardSchedule)
        let taskID = try await harness.seedFinishedTask()
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        let relay = try await harness.startRelay()
        _ = try await harness.receiver.next()
        try await eventually("the 429 to be recorded") {
            try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last?.attempts == 1
        }
        // The schedule alone would retry after 5 s; Retry-After asks for 120.
        #expect(try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last?.nextAttemptAt
            == Date(timeIntervalSince1970: Double(start) + 120))
        clock.advance(by: 120)
        #expect(try await harness.receiver.next()[0].timestamp == start + 120)
        try await harness.stop(relay)
    }

    @Test func aDestinationThatNeverAnswersDoesNotDelayAHealthyOne() async throws {
        let hang = Latch()
        let stuck = WebhookReceiver { _ in
            await hang.wait()
            return .init(status: .ok)
        }
        let stuckServer = try await stuck.start()
        let harness = try await RelayHarness.start(tune: { configuration in
            configuration.engine.deliveryConcurrency = 8
            configuration.engine.destinations.maxConcurrent = 2
            configuration.engine.deliveryTimeout = 60
            configuration.engine.leaseDuration = 120
        })
        for _ in 0..<10 { _ = try await harness.seedFinishedTask(callbackURL: stuckServer.baseURL + "/hook") }
        let relay = try await harness.startRelay()
        // The stuck destination holds its two slots ...
        _ = try await stuck.next(2)
        // ... while a healthy destination's event, created after ten stuck ones, goes straight through.
        // The stuck receiver answers nothing until the test opens it at the end: the healthy delivery can
        // only arrive if the stuck destination holds no more than its own slots.
        let healthyTask = try await harness.seedFinishedTask()
        let delivered = try await harness.receiver.next()[0]
        #expect(delivered.json["data"]?["task_id"] == .string(healthyTask))
        #expect(stuck.all.count == 2, "the per-destination limit keeps the stuck destination at 2 attempts in flight")
        hang.open()
        try await harness.stop(relay)
        try await stuckServer.stop()
    }

    @Test func eventsArriveInOrderAndNothingFollowsTheTerminalOne() async throws {
        // The job is held until progress has been reported, then finishes.
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.holdJobs = true
        let harness = try await RelayHarness.start(simulator: simulator)
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let all: JSONValue = .array(WebhookEventType.allCases.map { .string($0.rawValue) })
        let taskID = try await api.submit(harness.request(extra: ["callback_events": all]))
        var events = try await harness.receiver.next(until: { $0.json["type"] == .string("task.progress") })
        harness.simulator.releaseJobs()
        events += try await harness.receiver.next(until: { $0.json["type"] == .string("task.succeeded") })
        let types = events.compactMap { $0.json["type"]?.stringValue }
        #expect(types.first == "task.submitted")
        #expect(types.last == "task.succeeded")
        #expect(types.dropFirst().dropLast().allSatisfy { $0 == "task.progress" })
        #expect(types.contains("task.progress"))
        #expect(Set(events.map(\.id)).count == events.count, "each event has its own webhook-id")
        #expect(events.first?.json["data"]?["upstream_task_id"]?.stringValue != nil)
        // Every event the relay created has been delivered: nothing is left to follow the terminal one.
        try await eventually("all events delivered") {
            let log = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"]
            guard case .array(let records)? = log else { return false }
            return records.allSatisfy { $0["state"] == .string("delivered") }
        }
        guard case .array(let records)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] else {
            Issue.record("no delivery log")
            return
        }
        #expect(records.count == events.count)
        #expect(harness.receiver.all.count == events.count)
        try await harness.stop(relay)
    }

    @Test func terminalEventsOnlyByDefault() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        let events = try await harness.receiver.next(until: { $0.json["type"] == .string("task.succeeded") })
        #expect(events.count == 1)
        guard case .array(let records)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] else {
            Issue.record("no delivery log")
            return
        }
        #expect(records.count == 1)
        try await harness.stop(relay)
    }

    @Test func deadLettersAreListedWithTheirAttemptsAndCanBeReplayed() async throws {
        let harness = try await RelayHarness.start(
            receiverAnswer: { attempt in attempt <= 2 ? .init(status: .serviceUnavailable) : .init(status: .ok) },
            tune: { $0.engine.retrySchedule = RetrySchedule(delays: [0, 0.05], jitter: 0) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        _ = try await harness.receiver.next(2)
        try await eventually("the budget to be spent") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("failed")
        }
        let failed = try await api.get("/v1/deliveries?state=failed")
        guard case .array(let deadLetters)? = failed.json["data"] else { throw TestFailure("no list: \(failed.json)") }
        #expect(deadLetters.map { $0["task_id"] } == [.string(taskID)])

        guard case .array(let log)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"],
              case .array(let attempts)? = log.first?["attempt_log"] else { throw TestFailure("no attempt log") }
        #expect(attempts.count == 2)
        #expect(attempts.allSatisfy { $0["status_code"] == .int(503) && $0["latency_ms"]?.numberValue != nil })

        let replay = try await api.post("/v1/tasks/\(taskID)/redeliver", body: Data())
        #expect(replay.status == 202)
        let resent = try await harness.receiver.next()[0]
        #expect(resent.id == harness.receiver.all[0].id, "a replay keeps the webhook-id")
        try await eventually("the replay to be delivered") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("delivered")
        }
        #expect(try await api.get("/v1/deliveries?state=failed").json["data"] == .array([]))
        #expect(try await api.get("/v1/deliveries?state=bogus").status == 400)
        #expect(try await api.post("/v1/tasks/task_unknown/redeliver", body: Data()).status == 404)
        try await harness.stop(relay)
    }

    @Test func duringARotationEachDeliveryCarriesBothSignatures() async throws {
        let harness = try await RelayHarness.start()
        _ = try await harness.seedFinishedTask()
        // The operator changes the configured secret: the old one keeps signing for the grace period.
        let newSecret = WebhookSecret.generate().encoded
        let relay = try await harness.startRelay { $0.webhookSecret = newSecret }
        let delivery = try await harness.receiver.next()[0]
        #expect(delivery.signature.split(separator: " ").count == 2)
        #expect(delivery.verifies(with: RelayHarness.secret))
        #expect(delivery.verifies(with: newSecret))
        #expect(!delivery.verifies(with: WebhookSecret.generate().encoded))
        try await harness.stop(relay)
    }

    @Test func aRotationEndsWithItsGracePeriod() async throws {
        let store = try SQLiteStore(path: FileManager.default.temporaryDirectory.appendingPathComponent("rotation-\(UUID()).sqlite").path, deadline: TestStores.deadline)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.upsertClient(Client(id: "cl_1", name: "one", signingSecret: "whsec_old"), keyHash: "h1", now: now)
        #expect(try await store.rotateSecret(clientID: "cl_1", newSecret: "whsec_new", previousValidUntil: now.addingTimeInterval(60)))
        #expect(try await store.clients().first?.rotationEndsAt == now.addingTimeInterval(60))
        #expect(try await store.revokeClient(id: "cl_1", at: now))
        #expect(try await store.client(keyHash: "h1") == nil, "a revoked key no longer authenticates")
        #expect(try await !store.rotateSecret(clientID: "cl_1", newSecret: "whsec_x", previousValidUntil: now))
    }

    @Test func attemptLogsOlderThanTheRetentionArePruned() async throws {
        let clock = ManualClock.startingNow()
        let harness = try await RelayHarness.start(receiverAnswer: { _ in .init(status: .internalServerError) }, clock: clock)
        let taskID = try await harness.seedFinishedTask()
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        let relay = try await harness.startRelay()
        _ = try await harness.receiver.next()
        try await eventually("an attempt to be logged") {
            try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last?.attemptLog.count == 1
        }
        try await relay.stop()
        let retention = RetentionService(store: store, clock: clock, attemptRetention: 86_400, idempotencyRetention: 86_400,
                                         logger: TestLog.logger)
        #expect(try await retention.prune().attempts == 0)
        clock.advance(by: 86_401)
        #expect(try await retention.prune().attempts == 1)
        #expect(try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last?.attemptLog.isEmpty == true)
        try await harness.stop()
    }
}
