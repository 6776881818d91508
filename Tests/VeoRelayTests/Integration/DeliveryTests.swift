import Foundation
import Testing
@testable import VeoRelay

@Suite("Webhook delivery", .stopsWhatItStarts)
struct DeliveryTests {
    @Test func aFailingReceiverGetsTheSameEventAgainUntilItAccepts() async throws {
        let harness = try await RelayHarness.start(receiverAnswer: { attempt in .init(status: attempt <= 2 ? .internalServerError : .ok) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())

        let attempts = try await harness.receiver.next(3)
        #expect(Set(attempts.map(\.id)).count == 1, "webhook-id is stable across retries")
        #expect(Set(attempts.map(\.body)).count == 1, "the payload is the same bytes on every attempt")
        #expect(attempts.allSatisfy { $0.verifies(with: RelayHarness.secret) })
        try await eventually("the third attempt to be recorded") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("delivered")
        }
        let callback = try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]
        #expect(callback?["attempts"] == .int(3))
        #expect(callback?["last_status_code"] == .int(200))
        try await harness.stop(relay)
    }

    @Test func a410StopsDeliveryForGood() async throws {
        let harness = try await RelayHarness.start(receiverAnswer: { _ in .init(status: .gone) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        _ = try await harness.receiver.next()
        try await eventually("the 410 to be recorded") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("gone")
        }
        #expect(harness.receiver.all.count == 1)
        try await harness.stop(relay)
    }

    @Test func aSpentBudgetLeavesTheEventFailed() async throws {
        let harness = try await RelayHarness.start(receiverAnswer: { _ in .init(status: .serviceUnavailable) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        let budget = harness.configuration.engine.retrySchedule.maxAttempts
        _ = try await harness.receiver.next(budget)
        try await eventually("the budget to be spent") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("failed")
        }
        let callback = try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]
        #expect(callback?["attempts"] == .int(budget))
        #expect(callback?["last_status_code"] == .int(503))
        #expect(harness.receiver.all.count == budget)
        try await harness.stop(relay)
    }

    @Test func theRetryScheduleSpacesAttemptsAndHonoursRetryAfter() throws {
        let schedule = RetrySchedule.standard
        let now = Date(timeIntervalSince1970: 0)
        #expect(schedule.maxAttempts == 8)
        #expect(schedule.nextAttempt(after: 1, now: now, random: 0) == now.addingTimeInterval(5))
        #expect(schedule.nextAttempt(after: 2, now: now, random: 0) == now.addingTimeInterval(300))
        #expect(schedule.nextAttempt(after: 7, now: now, random: 0) == now.addingTimeInterval(36_000))
        #expect(schedule.nextAttempt(after: 8, now: now) == nil)
        // ±20 % jitter at the extremes.
        #expect(schedule.nextAttempt(after: 2, now: now, random: 1) == now.addingTimeInterval(360))
        #expect(schedule.nextAttempt(after: 2, now: now, random: -1) == now.addingTimeInterval(240))
        // Retry-After pushes later, never earlier.
        #expect(schedule.nextAttempt(after: 1, now: now, retryAfter: 120, random: 0) == now.addingTimeInterval(120))
        #expect(schedule.nextAttempt(after: 2, now: now, retryAfter: 10, random: 0) == now.addingTimeInterval(300))
        #expect(throws: ConfigurationError.self) { try RetrySchedule(parsing: "5s,soon") }
        #expect(try RetrySchedule(parsing: "0, 5s, 5m, 2h").delays == [0, 5, 300, 7_200])
    }
}
