import Foundation
import Testing
@testable import VeoRelay

/// Budgets and usage as a client meets them over HTTP: what is left on every accepted answer, a 429
/// naming the spent limit, and `GET /v1/usage`.
@Suite("Budgets and usage over HTTP", .stopsWhatItStarts)
struct BudgetTests {
    /// 2026-01-15T23:00:00Z: an hour before a UTC midnight.
    static let anHourBeforeMidnight = Date(timeIntervalSince1970: 1_768_518_000)

    /// Sets a client's budget in the relay's database, as `veo-relay keys budget` does.
    static func setBudget(_ text: String, clientID: String = RelayHarness.clientID, in harness: RelayHarness) async throws {
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { store.close() }
        #expect(try await store.setBudget(try ClientBudget(parsing: text), clientID: clientID))
    }

    @Test func aSpentDailyBudgetIsRefusedUntilTheUTCDayEnds() async throws {
        let clock = ManualClock(Self.anHourBeforeMidnight)
        let harness = try await RelayHarness.start(clock: clock)
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        try await Self.setBudget("per_day=2,video_seconds_per_day=12", in: harness)

        let first = try await api.send(.POST, "/v1/videos/generations", body: try JSONCoding.encode(harness.request(prompt: "first", extra: ["duration": .int(4)])),
                                       headers: [("Idempotency-Key", "first")])
        #expect(first.status == 200)
        #expect(first.headers["budget-remaining-per-day"] == "1")
        #expect(first.headers["budget-remaining-video-seconds-per-day"] == "8")
        #expect(first.headers["budget-remaining-per-month"] == nil, "only the limits the client has")
        let second = try await api.post("/v1/videos/generations", json: harness.request(prompt: "second"))
        #expect(second.status == 200 && second.headers["budget-remaining-per-day"] == "0", "\(second.headers)")
        #expect(second.headers["budget-remaining-video-seconds-per-day"] == "0", "8 s when duration is omitted")

        let refused = try await api.post("/v1/videos/generations", json: harness.request(prompt: "third"))
        #expect(refused.status == 429)
        #expect(refused.json["error"]?["type"] == .string("budget_exceeded"))
        #expect(refused.json["error"]?["param"] == .string("per_day"))
        #expect(refused.json["error"]?["message"]?.stringValue?.contains("2026-01-16T00:00:00Z") == true, "\(refused.json)")
        #expect(refused.headers["retry-after"] == "3600", "until the UTC midnight")
        let replay = try await api.send(.POST, "/v1/videos/generations", body: try JSONCoding.encode(harness.request(prompt: "first", extra: ["duration": .int(4)])),
                                        headers: [("Idempotency-Key", "first")])
        #expect(replay.status == 200 && replay.taskID == first.taskID, "a replay is answered, and costs nothing")
        var other = api
        other.key = RelayHarness.otherAPIKey
        #expect(try await other.post("/v1/videos/generations", json: harness.request(prompt: "another client's")).status == 200,
                "another client's budget is its own")

        clock.advance(by: 3_600)
        let nextDay = try await api.post("/v1/videos/generations", json: harness.request(prompt: "third, the next day", extra: ["duration": .int(6)]))
        #expect(nextDay.status == 200 && nextDay.headers["budget-remaining-per-day"] == "1", "\(nextDay.status) \(nextDay.headers)")

        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        let stored = try await store.tasks(TaskQuery(scope: .client(RelayHarness.clientID), limit: 10)).map(\.request.prompt)
        store.close()
        #expect(Set(stored) == ["first", "second", "third, the next day"], "the refused request stored nothing")

        let usage = try await api.get("/v1/usage?from=2026-01-15&to=2026-01-16")
        #expect(usage.status == 200)
        let report = try #require(usage.json["data"])
        #expect(report["totals"]?["generations"] == .int(3))
        #expect(report["totals"]?["video_seconds"] == .int(18))
        // (How the tasks end is not asserted: the clock's jump past their deadline races their polls.)
        guard case .array(let days)? = report["usage"] else { Issue.record("\(report)"); return }
        #expect(days.map { [$0["day"], $0["generations"], $0["video_seconds"]] } == [
            [.string("2026-01-15"), .int(2), .int(12)], [.string("2026-01-16"), .int(1), .int(6)],
        ])
        #expect(report["budget"]?["remaining"] == .object(["per_day": .int(1), "video_seconds_per_day": .int(6)]))
        #expect(report["budget"]?["used"]?["per_month"] == .int(3))
        #expect(report["budget"]?["day_resets_at"] == .int(1_768_608_000), "2026-01-17T00:00:00Z")
        let byModel = try await api.get("/v1/usage?from=2026-01-15&to=2026-01-16&group_by=model")
        guard case .array(let models)? = byModel.json["data"]?["usage"] else { Issue.record("\(byModel.json)"); return }
        #expect(models.map { $0["model"] } == [.string("veo3.1-fast-official")])
        let theirs = try await other.get("/v1/usage?from=2026-01-15&to=2026-01-16")
        #expect(theirs.json["data"]?["totals"]?["generations"] == .int(1), "each client sees only its own")
        #expect(theirs.json["data"]?["budget"] == nil, "no budget, no budget section")
        try await harness.stop(relay)
    }

    /// The in-flight cap frees up when a task ends, not at a time: no `Retry-After`.
    @Test func theInFlightCapFreesUpWhenATaskEnds() async throws {
        let harness = try await RelayHarness.start()
        harness.simulator.reconfigure { $0.holdJobs = true }
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        try await Self.setBudget("in_flight=1", in: harness)

        let first = try await api.post("/v1/videos/generations", json: harness.request(prompt: "holds the only slot"))
        #expect(first.status == 200 && first.headers["budget-remaining-in-flight"] == "0")
        let refused = try await api.post("/v1/videos/generations", json: harness.request(prompt: "waits for the slot"))
        #expect(refused.status == 429 && refused.json["error"]?["param"] == .string("in_flight"), "\(refused.json)")
        #expect(refused.headers["retry-after"] == nil)

        harness.simulator.releaseJobs()
        _ = try await harness.receiver.next() // the first task's webhook: it has ended
        let admitted = try await api.post("/v1/videos/generations", json: harness.request(prompt: "takes the freed slot"))
        #expect(admitted.status == 200 && admitted.headers["budget-remaining-in-flight"] == "0", "\(admitted.json)")
        try await harness.stop(relay)
    }

    @Test(arguments: [
        ("from=2026-13-01", "from"), ("to=yesterday", "to"), ("from=2026-02-02&to=2026-02-01", "from"),
        ("from=2024-01-01&to=2025-01-02", "from"), ("group_by=week", "group_by"),
    ])
    func aBadUsageQueryIsA400NamingTheParameter(query: String, param: String) async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let answer = try await APIClient(baseURL: relay.baseURL).get("/v1/usage?" + query)
        #expect(answer.status == 400)
        #expect(answer.json["error"]?["param"] == .string(param), "\(answer.json)")
        try await harness.stop(relay)
    }
}
