import Foundation
import HTTPTypes
import Testing
@testable import VeoRelay

/// Numbers from outside — receivers' and the upstream's headers, the upstream's task fields, stored
/// rows, configuration — never crash the relay: they are bounded before use, or refused at start.
@Suite("Numbers from outside", .stopsWhatItStarts)
struct ExternalInputTests {
    /// Edge values, then random bit patterns (every NaN, infinity, subnormal and huge value shows up).
    static let values: [Double] = {
        var generator = SystemRandomNumberGenerator()
        let edges: [Double] = [.nan, .infinity, -.infinity, -1, -1e300, -0.0, 0, 0.5, 1, 99.9, 100, 101, 86_400, 1e9, 1e19,
                               9.3e18, -9.3e18, 1e300, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        return edges + (0..<5_000).map { _ in Double(bitPattern: generator.next()) }
    }()

    @Test func everyPathBoundsEveryValue() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let estimates = DurationEstimates(defaults: [.fast: 60, .quality: 120])
        let schedule = PollSchedule(policy: PollPolicy(), estimates: estimates)
        let request = try RequestValidator().validate(.object([
            "model": .string("veo3.1-fast-official"), "prompt": .string("a cat"), "callback_url": .string("https://h.example/x")]))
        for value in Self.values {
            for shape in [JSONValue.string("\(value)")] + (value.isFinite ? [.double(value)] : []) {
                // Retry-After from a receiver (at most a day) and from the upstream (at most five minutes).
                for maximum in [RetryAfter.deliveryMaximum, RetryAfter.upstreamMaximum] {
                    let delay = RetryAfter.seconds(shape.stringValue ?? "\(value)", now: now, maximum: maximum)
                    #expect(delay.map { (0...maximum).contains($0) } ?? true, "Retry-After \(value)")
                }
                // An upstream task view with the value in every numeric field, in and out of the envelope.
                let fields: [String: JSONValue] = ["status": .string("processing"), "progress": shape, "estimated_time": shape,
                                                   "actual_time": shape, "created": shape, "completed": shape]
                for answer in [JSONValue.object(fields), .object(["code": .int(200), "data": .object(fields)])] {
                    let view = try #require(UpstreamAnswer.taskView(from: answer))
                    #expect(view.progress.map { (0...100).contains($0) } ?? true)
                    #expect(view.estimatedTime.map { (0...UpstreamAnswer.maximumDuration).contains($0) } ?? true)
                    // What the poller does with it: schedule, deadline, transition, payload, read view.
                    var task = RelayTask(clientID: "c", request: request, now: now)
                    task.beginSubmission()
                    task.submitted(UpstreamSubmission(taskID: "u", answer: ""), at: now, firstPollAt: now)
                    let next = schedule.nextPoll(for: task, observed: view, now: now)
                    #expect(next.timeIntervalSince(now) >= 0 && next.timeIntervalSince(now) <= PollPolicy().ceiling)
                    _ = task.observe(view, at: now, nextPollAt: next)
                    #expect(DeadlinePolicy().deadline(for: task, estimates: estimates).unixSeconds > now.unixSeconds)
                    _ = try JSONCoding.encode(WebhookPayload(type: .taskProgress, task: task, at: now))
                    _ = try JSONCoding.encode(TaskResource(task: task, callback: CallbackSummary(
                        state: "pending", attempts: 1, lastStatusCode: 503, lastError: nil, nextAttemptAt: Date(timeIntervalSince1970: value).unixSeconds)))
                }
                // Video expiry, whichever shape the URL has.
                let result: JSONValue = .object(["videos": .array([.object(["url": .string("https://v.example/a.mp4"), "expires_at": shape])])])
                #expect(VideoLink.links(from: result).allSatisfy { ($0.expiresAt ?? 0) >= 0 })
                // Stored timestamps, whatever an older version wrote.
                #expect((0...ExternalNumber.latestUnixSeconds).contains(Date(timeIntervalSince1970: value).unixSeconds))
            }
        }
    }

    @Test func nonsensicalConfigurationIsRefusedNotTrapped() throws {
        let settings: [(String, WritableKeyPath<RelayConfiguration, Double>)] = [
            ("rate limit", \.rateLimit.rate), ("drain timeout", \.drainTimeout), ("lease", \.engine.leaseDuration),
            ("delivery timeout", \.engine.deliveryTimeout), ("upstream timeout", \.engine.upstreamTimeout),
            ("poll floor", \.engine.polling.floor), ("poll ceiling", \.engine.polling.ceiling), ("upstream rate", \.engine.upstream.rate),
            ("upstream burst", \.engine.upstream.burst), ("rate-limit burst", \.rateLimit.burst), ("breaker cool-down", \.engine.destinations.cooldown),
            ("deadline", \.engine.deadlines.maximum), ("retention", \.engine.attemptRetention),
        ]
        #expect(throws: Never.self) { try RelayConfiguration().validate() }
        for (name, setting) in settings {
            for value in [0, -1, .nan, .infinity, 1e300] {
                var configuration = RelayConfiguration()
                configuration[keyPath: setting] = value
                #expect(throws: ConfigurationError.self, "\(name) = \(value)") { try configuration.validate() }
            }
        }
        for (name, setting) in [("delivery concurrency", \RelayConfiguration.engine.deliveryConcurrency),
                                ("destination concurrency", \.engine.destinations.maxConcurrent), ("port", \.port)] {
            var configuration = RelayConfiguration()
            configuration[keyPath: setting] = name == "port" ? 65_536 : 0
            #expect(throws: ConfigurationError.self, "\(name)") { try configuration.validate() }
        }
    }

    @Test func aReceiverAskingToWaitForeverWaitsADayAndTheRelayKeepsServing() async throws {
        let clock = ManualClock.startingNow()
        let start = clock.now()
        let harness = try await RelayHarness.start(
            receiverAnswer: { _ in .init(status: .serviceUnavailable, headers: [.retryAfter: "1e300"]) }, clock: clock)
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await harness.seedFinishedTask()
        _ = try await harness.receiver.next()
        try await eventually("the 503 to be recorded") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["attempts"] == .int(1)
        }
        let task = try await api.get("/v1/tasks/\(taskID)")
        #expect(task.status == 200)
        #expect(task.json["data"]?["callback"]?["next_attempt_at"] == .int(start.unixSeconds + 86_400), "Retry-After capped at a day")
        #expect(try await api.get("/v1/tasks/\(taskID)/deliveries").status == 200)
        #expect(try await api.get("/v1/deliveries?state=pending").status == 200)
        try await harness.stop(relay)
    }

    @Test(arguments: TestStores.all)
    func absurdStoredTimesReadBackWithoutTrapping(store kind: TestStores.Kind) async throws {
        let harness = try await RelayHarness.start(database: try await kind.freshLocation())
        let taskID = try await harness.seedFinishedTask()
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        let lease = Lease(owner: "test/dispatcher/1", expiresAt: harness.clock.now().addingTimeInterval(60))
        let delivery = try #require(try await store.claimDeliveries(now: harness.clock.now(), limit: 1, lease: lease, excluding: []).first)
        // What an older version stored from `Retry-After: 1e300`.
        try await store.recordAttempt(DeliveryAttempt(key: delivery.key, attemptedAt: Date(timeIntervalSince1970: 1e300),
                                                      statusCode: 503, latency: 1e300, error: nil, responseExcerpt: nil),
                                      resolution: .retry(at: Date(timeIntervalSince1970: 1e300)), lease: lease)
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let task = try await api.get("/v1/tasks/\(taskID)")
        #expect(task.status == 200)
        #expect(task.json["data"]?["callback"]?["next_attempt_at"] == .int(ExternalNumber.latestUnixSeconds))
        #expect(try await api.get("/v1/tasks/\(taskID)/deliveries").status == 200)
        #expect(try await api.get("/v1/deliveries?state=pending").status == 200)
        store.close()
        try await harness.stop(relay)
    }

    @Test func anUpstreamReportingNaNAndHugeNumbersLeavesTheRelayRunning() async throws {
        let upstream = ScriptedUpstream { poll in
            switch poll {
            case 1: .init(body: #"{"code": 200, "data": {"status": "processing", "progress": "nan", "estimated_time": 1e19}}"#)
            case 2: .init(body: #"{"code": 200, "data": {"status": "processing", "progress": 1e19, "estimated_time": "nan", "created": 1e300}}"#)
            case 3: .init(status: .tooManyRequests, headers: [.retryAfter: "-5"], body: #"{"error": {"message": "slow down"}}"#)
            default: ScriptedUpstream.completed
            }
        }
        let upstreamServer = try await upstream.start()
        let harness = try await RelayHarness.start(tune: { $0.upstream = .remote(url: upstreamServer.baseURL, apiKey: RelayHarness.upstreamKey) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let all: JSONValue = .array(WebhookEventType.allCases.map { .string($0.rawValue) })
        let taskID = try await api.submit(harness.request(extra: ["callback_events": all]))
        let events = try await harness.receiver.next(until: { $0.json["type"] == JSONValue.string("task.succeeded") })
        #expect(events.allSatisfy { (0...100).contains($0.json["data"]?["progress"]?.numberValue ?? -1) })
        #expect(events.contains { $0.json["type"] == .string("task.progress") && $0.json["data"]?["progress"] == .int(100) },
                "progress 1e19 reads as 100 %")
        let task = try await api.get("/v1/tasks/\(taskID)")
        #expect(task.status == 200)
        #expect(task.json["data"]?["status"] == .string("completed"))
        #expect(upstream.pollCount >= 4)
        try await harness.stop(relay)
        try await upstreamServer.stop()
    }
}
