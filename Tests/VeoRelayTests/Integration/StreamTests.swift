import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// The live event stream (`GET /v1/tasks/{id}/events`) and watch tokens, over loopback.
@Suite("Event stream and watch tokens", .stopsWhatItStarts)
struct StreamTests {
    static let allEvents: JSONValue = .array(WebhookEventType.allCases.map { .string($0.rawValue) })

    static func heldHarness(database: String? = nil) async throws -> RelayHarness {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.holdJobs = true
        return try await RelayHarness.start(simulator: simulator, database: database)
    }

    /// Reads a stream up to and including its first `task.progress` event.
    static func untilProgress(_ messages: AsyncThrowingStream<ServerSentEvent, any Error>) async throws -> [ServerSentEvent] {
        var seen: [ServerSentEvent] = []
        for try await message in messages where message.event != nil {
            seen.append(message)
            if message.event == "task.progress" { break }
        }
        return seen
    }

    @Test func aStreamCarriesEveryEventInOrderWithTheWebhooksIdsAndBodies() async throws {
        let harness = try await Self.heldHarness()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request(extra: ["callback_events": Self.allEvents]))
        let stream = try await EventStreamClient.open(relay.baseURL + "/v1/tasks/\(taskID)/events")
        #expect(stream.status == 200)
        #expect(stream.headers["content-type"] == "text/event-stream")
        var streamed = try await within(.seconds(30), "submitted and progress") { try await Self.untilProgress(stream.messages) }
        harness.simulator.releaseJobs()
        streamed += try await within(.seconds(30), "the rest of the stream") { try await stream.messages.events() }
        let webhooks = try await harness.receiver.next(until: { $0.json["type"] == .string("task.succeeded") })

        #expect(streamed.first?.event == "task.submitted")
        #expect(streamed.last?.event == "task.succeeded")
        #expect(streamed.dropFirst().dropLast().allSatisfy { $0.event == "task.progress" })
        #expect(streamed.map(\.id) == webhooks.map { Optional($0.id) }, "the same ids, in the same order, as the webhooks")
        #expect(streamed.map(\.data) == webhooks.map { Optional(String(decoding: $0.body, as: UTF8.self)) }, "exactly the webhook bodies")
        #expect(streamed.map(\.event) == webhooks.map { $0.json["type"]?.stringValue })

        // Resuming after the first event yields only the later ones; a filter narrows them.
        let firstID = try #require(streamed.first?.id)
        let resumed = try await EventStreamClient.open(relay.baseURL + "/v1/tasks/\(taskID)/events", headers: [("Last-Event-ID", firstID)])
        #expect(try await within(.seconds(30), "resumed stream") { try await resumed.messages.events() }.map(\.id) == Array(streamed.dropFirst()).map(\.id))
        let filtered = try await EventStreamClient.open(relay.baseURL + "/v1/tasks/\(taskID)/events?types=task.succeeded,task.failed")
        #expect(try await within(.seconds(30), "filtered stream") { try await filtered.messages.events() }.map(\.event) == ["task.succeeded"])
        #expect(try await api.get("/v1/tasks/\(taskID)/events?types=task.nothing").json["error"]?["param"] == .string("types"))
        try await harness.stop(relay)
    }

    @Test func aStreamOnlyTaskStreamsProgressAndSendsNoWebhook() async throws {
        let harness = try await Self.heldHarness()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        var body = harness.request()
        body = .object((body.objectValue ?? [:]).filter { $0.key != "callback_url" }.merging(["delivery": .string("stream")]) { $1 })
        let accepted = try await api.post("/v1/videos/generations", json: body)
        let taskID = try #require(accepted.taskID)
        let watchURL = try #require(accepted.watchURL)
        #expect(watchURL.hasPrefix(relay.baseURL + "/v1/tasks/\(taskID)/events?watch_token=wt1."))

        let stream = try await EventStreamClient.open(watchURL, apiKey: nil)
        #expect(try await within(.seconds(30), "progress") { try await Self.untilProgress(stream.messages) }.map(\.event) == ["task.submitted", "task.progress"])
        harness.simulator.releaseJobs()
        let rest = try await within(.seconds(30), "the terminal event") { try await stream.messages.events() }
        #expect(rest.last?.event == "task.succeeded")
        let view = try await api.get("/v1/tasks/\(taskID)")
        #expect(view.json["data"]?["status"] == .string("completed"))
        #expect(view.json["data"]?["callback"] == nil, "no callback to report")
        #expect(try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] == .array([]), "no webhook deliveries")
        #expect(harness.receiver.all.isEmpty)

        // The rules of the `delivery` field.
        let both = try await api.post("/v1/videos/generations", json: .object((harness.request().objectValue ?? [:]).merging(["delivery": .string("stream")]) { $1 }))
        #expect(both.status == 400 && both.json["error"]?["param"] == .string("callback_url"))
        let neither = try await api.post("/v1/videos/generations", json: .object((harness.request().objectValue ?? [:]).filter { $0.key != "callback_url" }))
        #expect(neither.status == 400 && neither.json["error"]?["param"] == .string("callback_url"))
        try await harness.stop(relay)
    }

    @Test func aWatchTokenReadsItsOneTaskAndNothingElse() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let first = try await api.post("/v1/videos/generations", json: harness.request())
        let taskID = try #require(first.taskID)
        let otherID = try await api.submit(harness.request())
        let watchURL = try #require(first.watchURL)
        let token = try #require(URLComponents(string: watchURL)?.queryItems?.first { $0.name == "watch_token" }?.value)
        let holder = APIClient(baseURL: relay.baseURL, key: nil)

        let read = try await holder.get("/v1/tasks/\(taskID)?watch_token=\(token)")
        #expect(read.status == 200)
        #expect(read.json["data"]?["id"] == .string(taskID))
        #expect(read.json["data"]?["watch_url"] == nil, "a token cannot mint a new token")
        #expect(try await api.get("/v1/tasks/\(taskID)").json["data"]?["watch_url"]?.stringValue != nil)
        #expect(try await holder.get("/v1/tasks/\(otherID)?watch_token=\(token)").status == 404)
        #expect(try await holder.get("/v1/tasks/\(otherID)/events?watch_token=\(token)").status == 404)
        #expect(try await holder.get("/v1/tasks/\(taskID)/deliveries?watch_token=\(token)").status == 401)
        #expect(try await holder.get("/v1/deliveries?watch_token=\(token)").status == 401)
        #expect(try await holder.send(.POST, "/v1/tasks/\(taskID)/redeliver?watch_token=\(token)", body: nil).status == 401)
        #expect(try await holder.post("/v1/videos/generations?watch_token=\(token)", json: harness.request()).status == 401)

        // Tampered: another task's id under this token's signature, or a changed signature.
        let parts = token.split(separator: ".").map(String.init)
        let forged = Base64URL.encode(Data("\(otherID)\n\(RelayHarness.clientID)\n\(Int(Date().timeIntervalSince1970) + 3_600)".utf8))
        #expect(try await holder.get("/v1/tasks/\(otherID)?watch_token=wt1.\(forged).\(parts[2])").status == 401)
        let flipped = parts[2].first == "A" ? "B" + parts[2].dropFirst() : "A" + parts[2].dropFirst()
        #expect(try await holder.get("/v1/tasks/\(taskID)?watch_token=wt1.\(parts[1]).\(flipped)").status == 401)

        // Expired: signed with the relay's own key, but issued longer ago than its lifetime.
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        let signer = WatchTokenSigner(secret: try await store.sharedSecret(named: WatchTokenSigner.secretName, candidate: "unused"),
                                      lifetime: harness.configuration.streams.watchTokenLifetime)
        store.close()
        let expired = signer.token(taskID: taskID, clientID: RelayHarness.clientID, now: Date().addingTimeInterval(-signer.lifetime - 60))
        let answer = try await holder.get("/v1/tasks/\(taskID)?watch_token=\(expired)")
        #expect(answer.status == 401)
        #expect(answer.json["error"]?["message"] == .string("The watch token has expired."))
        let fresh = signer.token(taskID: taskID, clientID: RelayHarness.clientID, now: Date())
        #expect(try await holder.get("/v1/tasks/\(taskID)?watch_token=\(fresh)").status == 200, "the same key, in date, is accepted")
        try await harness.stop(relay)
    }

    @Test func streamsAreBoundedPerClientBeatWhileIdleAndEndAtShutdown() async throws {
        let harness = try await Self.heldHarness()
        let relay = try await harness.startRelay { configuration in
            configuration.streams.maxPerClient = 1
            configuration.streams.heartbeat = .milliseconds(50)
        }
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        let stream = try await EventStreamClient.open(relay.baseURL + "/v1/tasks/\(taskID)/events")
        // A held job: nothing happens, yet heartbeats arrive.
        let heartbeat = try await within(.seconds(30), "a heartbeat") {
            for try await message in stream.messages where message.comment == "heartbeat" { return true }
            return false
        }
        #expect(heartbeat)
        let second = try await EventStreamClient.open(relay.baseURL + "/v1/tasks/\(taskID)/events")
        #expect(second.status == 429)
        #expect(try await APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey).get("/v1/tasks/\(taskID)/events").status == 404,
                "another client's task")

        // Graceful shutdown ends the open stream cleanly (the client would reconnect elsewhere).
        let stopping = Task { try await relay.stop() }
        let remaining = try await within(.seconds(30), "the stream to end") { try await stream.messages.events() }
        #expect(!remaining.contains { $0.event == "task.succeeded" })
        try await within(.seconds(30), "the relay to stop") { try await stopping.value }
        try await harness.stop()
    }

    @Test(arguments: [false, true])
    func submitWaitFollowsTheStreamOrPollsWhenItCannotOpen(streamsFull: Bool) async throws {
        let harness = try await Self.heldHarness()
        let relay = try await harness.startRelay { $0.streams.maxPerClient = 1 }
        let api = APIClient(baseURL: relay.baseURL)
        // Holding the client's only stream slot makes the follower's stream answer 429.
        let occupied = streamsFull ? try await EventStreamClient.open(relay.baseURL + "/v1/tasks/\(try await api.submit(harness.request()))/events") : nil
        let submit = try RelayProcess(["submit", "--relay", relay.baseURL, "--key", RelayHarness.apiKey, "--model", "veo3.1-fast-official",
                                       "--prompt", "a paper boat", "--delivery", "stream", "--wait"])
        try await submit.explaining {
            try await submit.waitForOutput(streamsFull ? "event=poll status=processing" : "event=task.progress")
            harness.simulator.releaseJobs()
            #expect(try await submit.exitStatus() == 0)
        }
        let lines = submit.standardOutput.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("video: http") && $0.hasSuffix(".mp4") })
        if streamsFull {
            #expect(lines.contains("event=poll status=completed progress=100%"))
            #expect(!lines.contains { $0.hasPrefix("event=task.") })
        } else {
            #expect(lines.first { $0.hasPrefix("event=") } == "event=task.submitted status=pending progress=0%")
            #expect(lines.contains("event=task.succeeded status=completed progress=100%"))
            #expect(!lines.contains { $0.hasPrefix("event=poll") })
        }
        withExtendedLifetime(occupied) {}
        try await harness.stop(relay)
    }

    @Test func corsAnswersOnlyTheConfiguredOrigins() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay { $0.streams.corsOrigins = ["http://app.example"] }
        let api = APIClient(baseURL: relay.baseURL)
        let allowed = try await api.send(.GET, "/v1/tasks/task_none", body: nil, headers: [("Origin", "http://app.example")])
        #expect(allowed.headers["access-control-allow-origin"] == "http://app.example")
        let other = try await api.send(.GET, "/v1/tasks/task_none", body: nil, headers: [("Origin", "http://evil.example")])
        #expect(other.headers["access-control-allow-origin"] == nil)
        let preflight = try await APIClient(baseURL: relay.baseURL, key: nil).send(
            .OPTIONS, "/v1/videos/generations", body: nil,
            headers: [("Origin", "http://app.example"), ("Access-Control-Request-Method", "POST"),
                      ("Access-Control-Request-Headers", "authorization,content-type")])
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-headers"]?.lowercased().contains("authorization") == true)
        // Another origin's preflight is refused as such, naming the setting, and without CORS headers.
        let refused = try await APIClient(baseURL: relay.baseURL, key: nil).send(
            .OPTIONS, "/v1/videos/generations", body: nil, headers: [("Origin", "http://evil.example"), ("Access-Control-Request-Method", "POST")])
        #expect(refused.status == 403 && refused.headers["access-control-allow-origin"] == nil)
        #expect(refused.json["error"]?["type"] == .string("cors_refused"))
        #expect(refused.json["error"]?["message"]?.stringValue?.contains("--cors-origin") == true, "\(refused.json)")
        try await harness.stop(relay)
    }
}

@Suite("Event stream across instances", .stopsWhatItStarts, .enabled(if: TestPostgres.adminURL != nil, "set VEO_RELAY_TEST_POSTGRES_URL (scripts/test does)"))
struct SharedStreamTests {
    @Test func aStreamOnRelayBSeesTheEventsRelayAWrites() async throws {
        let harness = try await StreamTests.heldHarness(database: try await TestPostgres.freshDatabase())
        let worker = try await harness.startRelay(instance: "relay-a")
        // B only serves the API: every event of the task is written by A.
        let front = try await harness.startRelay(instance: "relay-b") { $0.apiOnly = true }
        let taskID = try await APIClient(baseURL: worker.baseURL).submit(harness.request(extra: ["callback_events": StreamTests.allEvents]))
        let stream = try await EventStreamClient.open(front.baseURL + "/v1/tasks/\(taskID)/events")
        var streamed = try await within(.seconds(30), "submitted and progress through B") { try await StreamTests.untilProgress(stream.messages) }
        harness.simulator.releaseJobs()
        streamed += try await within(.seconds(30), "the rest through B") { try await stream.messages.events() }
        let webhooks = try await harness.receiver.next(until: { $0.json["type"] == .string("task.succeeded") })
        #expect(streamed.map(\.id) == webhooks.map { Optional($0.id) })
        #expect(streamed.last?.event == "task.succeeded")
        try await harness.stop(front, worker)
    }
}
