import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("End to end over loopback", .stopsWhatItStarts)
struct EndToEndTests {
    @Test func aSuccessfulGenerationYieldsExactlyOneSignedSucceededEvent() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let metadata: JSONValue = .object(["chat_id": .int(42), "reply_to": .string("m-1")])
        let taskID = try await api.submit(harness.request(extra: ["metadata": metadata, "duration": .int(6)]))

        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.verifies(with: RelayHarness.secret))
        #expect(delivery.id.hasPrefix("msg_"))
        #expect(delivery.path == "/hooks/veo")
        let event = delivery.json
        #expect(event["type"] == .string("task.succeeded"))
        #expect(event["timestamp"]?.stringValue?.hasSuffix("Z") == true)
        let data = try #require(event["data"])
        #expect(data["task_id"] == .string(taskID))
        #expect(data["upstream_task_id"]?.stringValue?.hasPrefix("task_") == true)
        #expect(data["upstream_task_id"] != .string(taskID))
        #expect(data["status"] == .string("completed"))
        #expect(data["progress"] == .int(100))
        #expect(data["metadata"] == metadata)
        #expect(data["request"]?["model"] == .string("veo3.1-fast-official"))
        #expect(data["request"]?["duration"] == .int(6))
        let video = try #require(VideoLink.links(from: .object(["videos": data["videos"] ?? .null])).first)
        #expect(video.url.hasSuffix(".mp4"))
        #expect((video.expiresAt ?? 0) > Int(Date().timeIntervalSince1970))

        // Once the relay has recorded the attempt, the event is settled: one attempt, one delivery.
        try await eventually("the delivery to be recorded") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("delivered")
        }
        let view = try await api.get("/v1/tasks/\(taskID)")
        #expect(view.status == 200)
        #expect(view.json["data"]?["status"] == .string("completed"))
        #expect(view.json["data"]?["callback"]?["attempts"] == .int(1))
        #expect(view.json["data"]?["callback"]?["last_status_code"] == .int(204))
        #expect(view.json["data"]?["result"]?["videos"] != nil)
        #expect(harness.receiver.all.count == 1)
        #expect(harness.simulator.totalSubmissions == 1)
        try await harness.stop(relay)
    }

    @Test func aFailedGenerationYieldsTaskFailedWithTheUpstreamMessage() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let taskID = try await APIClient(baseURL: relay.baseURL).submit(harness.request(prompt: "a storm \(SimulatorConfiguration.failureMarker)"))

        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.verifies(with: RelayHarness.secret))
        #expect(delivery.json["type"] == .string("task.failed"))
        #expect(delivery.json["data"]?["task_id"] == .string(taskID))
        #expect(delivery.json["data"]?["status"] == .string("failed"))
        #expect(delivery.json["data"]?["error"]?["code"] == .string("upstream_failed"))
        #expect(delivery.json["data"]?["error"]?["message"] == .string(SimulatorConfiguration.failureMessage))
        try await harness.stop(relay)
    }

    /// A key the upstream does not accept (401) is the account's fault, not the task's: the task waits.
    @Test func aKeyTheUpstreamRefusesHoldsTheTask() async throws {
        let refused = try await RelayHarness.start(simulator: SimulatorConfiguration(apiKey: "another-key", timeScale: 0.002))
        let capture = LogCapture()
        let relay = try await refused.startRelay(logger: capture.logger)
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(refused.request())

        try await capture.line(containing: "the upstream account refuses work", "HTTP 401", "Invalid API key")
        #expect(try await api.get("/v1/tasks/\(taskID)").json["data"]?["status"] == .string("pending"))
        #expect(refused.receiver.all.isEmpty, "no task ended")
        #expect(refused.simulator.totalSubmissions == 0)
        try await refused.stop(relay)
    }

    @Test func theFiveUpstreamScenariosAreAcceptedOverHTTP() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        for scenario in Scenarios.all {
            let answer = try await api.post("/v1/videos/generations", body: Scenarios.relayBody(scenario.json, callbackURL: harness.callbackURL))
            #expect(answer.status == 200, "\(scenario.name): \(answer.json)")
            #expect(answer.json["code"] == .int(200))
            guard case .array(let entries)? = answer.json["data"] else {
                Issue.record("\(scenario.name): no data array")
                continue
            }
            #expect(entries.first?["status"] == .string("submitted"))
            #expect(entries.first?["task_id"]?.stringValue?.hasPrefix("task_") == true)
        }
        _ = try await harness.receiver.next(Scenarios.all.count)
        try await harness.stop(relay)
    }

    @Test func everyBrokenRuleIsA400NamingTheFieldAndNeverReachesTheUpstream() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        for invalid in Scenarios.invalid {
            let answer = try await api.post("/v1/videos/generations", body: invalid.body)
            #expect(answer.status == 400, "\(invalid.rule)")
            #expect(answer.json["code"] == .int(400), "\(invalid.rule)")
            #expect(answer.json["error"]?["type"] == .string("invalid_request_error"), "\(invalid.rule)")
            #expect(answer.json["error"]?["param"] == invalid.param.map(JSONValue.string), "\(invalid.rule)")
            #expect(answer.json["error"]?["message"]?.stringValue?.isEmpty == false, "\(invalid.rule)")
        }
        let malformed = try await api.post("/v1/videos/generations", body: Data("{not json".utf8))
        #expect(malformed.status == 400)
        let oversized = try await api.post("/v1/videos/generations", body: Data(count: 200_000))
        #expect(oversized.status == 413)
        #expect(oversized.json["error"]?["type"] == .string("invalid_request_error"))
        #expect(harness.simulator.totalSubmissions == 0)
        try await harness.stop(relay)
    }

    @Test func requestsWithoutAValidKeyAre401AndOtherTasksAre404() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        for key in [nil, "wrong-key"] {
            let answer = try await APIClient(baseURL: relay.baseURL, key: key).post("/v1/videos/generations", json: harness.request())
            #expect(answer.status == 401)
            #expect(answer.json["error"]?["type"] == .string("authentication_error"))
        }
        let api = APIClient(baseURL: relay.baseURL)
        let missing = try await api.get("/v1/tasks/task_does_not_exist")
        #expect(missing.status == 404)
        #expect(missing.json["code"] == .int(404))
        let health = try await APIClient(baseURL: relay.baseURL, key: nil).get("/healthz")
        #expect(health.status == 200)
        #expect(harness.simulator.totalSubmissions == 0)
        try await harness.stop(relay)
    }
}
