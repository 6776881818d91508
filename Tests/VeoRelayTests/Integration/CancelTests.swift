import Foundation
import Testing
@testable import VeoRelay

/// A client takes back tasks it no longer wants, while the submitter works through the queue.
@Suite("Cancel", .stopsWhatItStarts)
struct CancelTests {
    /// 1,000 tasks, each cancelled as soon as it is accepted while the submitter runs: the database
    /// orders every cancel against the submitter's `submitting` write, so a task answered as cancelled
    /// never reaches the upstream, and one answered 409 reaches it exactly once.
    @Test(arguments: TestStores.all)
    func aTaskIsEitherCancelledAndNeverSubmittedOrSubmittedOnce(store kind: TestStores.Kind) async throws {
        let harness = try await RelayHarness.start(database: try await kind.freshLocation()) { configuration in
            configuration.rateLimit.rate = 100_000
            configuration.rateLimit.burst = 100_000
            configuration.engine.upstream.rate = 100_000
            configuration.engine.upstream.burst = 100_000
            // A few submissions at a time, so that the queue is not emptied before the cancels arrive: both
            // outcomes must race.
            configuration.engine.submitConcurrency = 4
        }
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let count = 1_000
        let answers = try await withThrowingTaskGroup(of: (String, Int, String?).self) { group in
            var answers: [(prompt: String, status: Int, state: String?)] = []
            for n in 0..<count {
                if n >= 16, let answer = try await group.next() { answers.append(answer) }
                group.addTask {
                    let prompt = "race \(n)"
                    let id = try await api.submit(harness.request(prompt: prompt))
                    let answer = try await api.post("/v1/tasks/\(id)/cancel", json: .object([:]))
                    return (prompt, answer.status, answer.json["data"]?["status"]?.stringValue ?? answer.json["error"]?["type"]?.stringValue)
                }
            }
            for try await answer in group { answers.append(answer) }
            return answers
        }
        let cancelled = answers.filter { $0.status == 200 }.map(\.prompt)
        let submitted = answers.filter { $0.status == 409 }.map(\.prompt)
        #expect(cancelled.count + submitted.count == count, "every cancel is 200 or 409: \(Set(answers.map { "\($0.status) \($0.state ?? "")" }))")
        #expect(answers.filter { $0.status == 200 }.allSatisfy { $0.state == "cancelled" })
        // 409: submitted (and, on a fast upstream, perhaps already finished by the time the cancel came).
        #expect(answers.filter { $0.status == 409 }.allSatisfy { ["already_submitted", "already_finished"].contains($0.state) },
                "\(Set(answers.filter { $0.status == 409 }.map { $0.state ?? "" }))")
        #expect(!cancelled.isEmpty && !submitted.isEmpty, "both outcomes raced: \(cancelled.count) cancelled, \(submitted.count) submitted")

        // Once every task has ended (so the submitter has worked every claim it made), count what the upstream saw.
        try await eventually("every task ended", within: .seconds(120)) {
            let store = harness.simulator
            return Set(store.submissionsByPrompt.keys).isSuperset(of: submitted)
        }
        let log = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        try await eventually("no task left queued or on the wire", within: .seconds(120)) {
            let backlog = try await log.backlog(now: Date())
            return (backlog.tasksByState[.queued] ?? 0) + (backlog.tasksByState[.submitting] ?? 0) + (backlog.tasksByState[.running] ?? 0) == 0
        }
        let upstream = harness.simulator.submissionsByPrompt
        #expect(cancelled.filter { upstream[$0] != nil }.isEmpty, "a cancelled task reached the upstream")
        #expect(submitted.allSatisfy { upstream[$0] == 1 }, "each task answered 409 was submitted exactly once")
        #expect(upstream.count == submitted.count)
        log.close()
        try await harness.stop(relay)
    }

    @Test func onlyTheTasksOwnerCancelsAndAWebhookSaysSo() async throws {
        // One submission at a time, held at the upstream's door: the next task waits in the queue.
        let harness = try await RelayHarness.start(tune: { $0.engine.submitConcurrency = 1 })
        harness.simulator.submissions.close()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let blocker = try await api.submit(harness.request(prompt: "holds the submitter at the upstream's door"))
        await harness.simulator.submissions.arrivals(atLeast: 1)
        let id = try await api.submit(harness.request(prompt: "taken back"))

        var other = api
        other.key = RelayHarness.otherAPIKey
        #expect(try await other.post("/v1/tasks/\(id)/cancel", json: .object([:])).status == 404, "another client's task reads as absent")
        let cancelled = try await api.post("/v1/tasks/\(id)/cancel", json: .object([:]))
        #expect(cancelled.status == 200 && cancelled.json["data"]?["status"] == .string("cancelled"), "\(cancelled.json)")
        #expect(cancelled.json["data"]?["error"]?["code"] == .string("cancelled"))
        #expect(try await api.post("/v1/tasks/\(id)/cancel", json: .object([:])).status == 200, "again: answered as it is")
        let failed = try await harness.receiver.next()[0]
        #expect(failed.json["type"] == .string("task.failed") && failed.json["data"]?["task_id"] == .string(id))
        #expect(failed.json["data"]?["status"] == .string("cancelled") && failed.json["data"]?["error"]?["code"] == .string("cancelled"))
        #expect(failed.verifies(with: RelayHarness.secret))

        let paid = try await api.post("/v1/tasks/\(blocker)/cancel", json: .object([:]))
        #expect(paid.status == 409 && paid.json["error"]?["type"] == .string("already_submitted"), "\(paid.json)")
        harness.simulator.submissions.open()
        _ = try await harness.receiver.next()
        #expect(harness.simulator.submissionsByPrompt["taken back"] == nil)
        try await harness.stop(relay)
    }
}
