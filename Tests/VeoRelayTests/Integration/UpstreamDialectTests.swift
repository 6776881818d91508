import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// Gateways of the xcompute family word their answers a little differently; the relay reads them
/// all, and what it cannot read ends the task with a clear error and a webhook, never a silent wait.
@Suite("Upstream answer shapes", .stopsWhatItStarts)
struct UpstreamDialectTests {
    struct Shape: Sendable, CustomTestStringConvertible {
        var name: String
        var dialect: SimulatorConfiguration.Dialect
        var testDescription: String { name }
    }

    static let readable: [Shape] = {
        func shape(_ name: String, _ change: (inout SimulatorConfiguration.Dialect) -> Void) -> Shape {
            var dialect = SimulatorConfiguration.Dialect()
            change(&dialect)
            return Shape(name: name, dialect: dialect)
        }
        return [
            shape("as documented") { _ in },
            shape("no envelope on submissions and polls") { $0.bare = true },
            shape("numeric task ids") { $0.numericIDs = true },
            shape("queued / in_progress / succeeded / canceled") { $0.otherStatusWords = true },
            shape("string error and string url") { $0.plainStrings = true },
            shape("all of them at once") { $0 = .init(); $0.bare = true; $0.numericIDs = true; $0.otherStatusWords = true; $0.plainStrings = true },
        ]
    }()

    @Test(arguments: readable)
    func everyShapeOfTheFamilyIsFollowedToItsWebhook(_ shape: Shape) async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.dialect = shape.dialect
        simulator.holdJobs = true
        let harness = try await RelayHarness.start(simulator: simulator)
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let progress: JSONValue = .array([.string("task.progress"), .string("task.succeeded"), .string("task.failed")])
        let succeeds = try await api.submit(harness.request(prompt: "a readable cat", extra: ["callback_events": progress]))
        let fails = try await api.submit(harness.request(prompt: "a failing cat \(SimulatorConfiguration.failureMarker)"))
        _ = try await harness.receiver.next(until: { $0.json["type"] == JSONValue.string("task.progress") })
        harness.simulator.releaseJobs()
        try await eventually("both tasks' terminal webhooks") {
            harness.receiver.all.filter { ["task.succeeded", "task.failed"].contains($0.json["type"]?.stringValue ?? "") }.count == 2
        }
        let deliveries = harness.receiver.all
        let byTask = Dictionary(grouping: deliveries) { $0.json["data"]?["task_id"]?.stringValue ?? "" }
        let succeeded = try #require(byTask[succeeds]?.last)
        #expect(succeeded.json["type"] == .string("task.succeeded"))
        guard case .array(let videos)? = succeeded.json["data"]?["videos"] else { throw TestFailure("no videos") }
        #expect(videos.first?["url"]?.stringValue?.contains("/_simulator/videos/") == true)
        let progressWords = Set(byTask[succeeds]?.dropLast().compactMap { $0.json["data"]?["status"]?.stringValue } ?? [])
        #expect(!progressWords.isEmpty && progressWords.isSubset(of: ["pending", "processing"]),
                "progress events use the documented status words, not \(progressWords)")
        let failed = try #require(byTask[fails]?.last)
        #expect(failed.json["type"] == .string("task.failed"))
        #expect(failed.json["data"]?["error"]?["message"] == .string(SimulatorConfiguration.failureMessage))
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 1)
        let stored = try await api.get("/v1/tasks/\(succeeds)")
        #expect(stored.json["data"]?["status"] == .string("completed"))
        #expect(stored.json["data"]?["submission_answer"]?.stringValue?.isEmpty == false, "the raw submission answer is kept")
        try await harness.stop(relay)
    }

    @Test func anAnswerThatCannotBeReadEndsTheTaskWithAWebhook() async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.dialect.unreadableStatus = true
        simulator.holdJobs = true
        let harness = try await RelayHarness.start(simulator: simulator, tune: { $0.engine.unreadableLimit = 3 })
        let relay = try await harness.startRelay()
        let taskID = try await APIClient(baseURL: relay.baseURL).submit(harness.request())
        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.json["type"] == .string("task.failed"))
        #expect(delivery.json["data"]?["task_id"] == .string(taskID))
        #expect(delivery.json["data"]?["error"]?["code"] == .string("upstream_unreadable"))
        let message = delivery.json["data"]?["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("mystery-"), "the message quotes the answer: \(message)")
        #expect(harness.simulator.totalPolls == 3)
        try await harness.stop(relay)
    }

    struct SubmissionFault: Sendable, CustomTestStringConvertible {
        var name: String
        var fault: SimulatorConfiguration.Fault
        var testDescription: String { name }
    }

    /// The job exists upstream but the answer says otherwise or never arrives whole: resending
    /// could pay twice, so the task ends `submission_outcome_unknown` with what was answered.
    @Test(arguments: [SubmissionFault(name: "502 after the job was created", fault: .badGateway),
                      SubmissionFault(name: "504 after the job was created", fault: .gatewayTimeout),
                      SubmissionFault(name: "malformed answer", fault: .malformed),
                      SubmissionFault(name: "answer lost mid-body", fault: .dropped)])
    func aSubmissionWhoseAnswerIsLostIsNeverResent(_ case: SubmissionFault) async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.faults[`case`.fault] = 1
        let harness = try await RelayHarness.start(simulator: simulator)
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.json["data"]?["error"]?["code"] == .string("submission_outcome_unknown"))
        #expect(harness.simulator.totalSubmissions == 1, "the paid job was created once and never resent")
        if [.badGateway, .gatewayTimeout, .malformed].contains(`case`.fault) {
            #expect(try await api.get("/v1/tasks/\(taskID)").json["data"]?["submission_answer"]?.stringValue?.isEmpty == false,
                    "the raw answer is kept for the operator")
        }
        try await harness.stop(relay)
    }

    @Test func aRejectionInsideAnHTTP200IsARejection() async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.dialect.rejectionInBody = true
        let harness = try await RelayHarness.start(simulator: simulator)
        let relay = try await harness.startRelay()
        _ = try await APIClient(baseURL: relay.baseURL).submit(harness.request())
        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.json["data"]?["error"]?["code"] == .string("upstream_rejected"))
        #expect(delivery.json["data"]?["error"]?["message"]?.stringValue?.contains("HTTP 400") == true)
        try await harness.stop(relay)
    }
}
