import Foundation
import HTTPTypes
import Synchronization
import Testing
@testable import VeoRelay

/// Registered endpoints over real sockets: fan-out with filters, isolation, replay to one destination,
/// v1a signatures, the test event, auto-disable and re-enable, and `max_rate` across two instances.
@Suite("Endpoints", .stopsWhatItStarts)
struct EndpointTests {
    /// A receiver on its own port (its own destination), and its URL.
    struct Receiver {
        let hooks: WebhookReceiver
        let server: RunningServer
        var url: String { server.baseURL + "/in" }

        static func start(answer: @escaping @Sendable (Int) async -> WebhookReceiver.Answer = { _ in .init(status: .noContent) }) async throws -> Receiver {
            let hooks = WebhookReceiver(answer: answer)
            return Receiver(hooks: hooks, server: try await hooks.start())
        }
    }

    /// Creates an endpoint over the API; its `data`.
    static func create(_ api: APIClient, _ fields: [String: JSONValue]) async throws -> JSONValue {
        let answer = try await api.post("/v1/endpoints", json: .object(fields))
        guard answer.status == 201, let data = answer.json["data"] else { throw TestFailure("endpoint refused: \(answer.status) \(answer.json)") }
        return data
    }

    static func types(_ deliveries: [WebhookReceiver.Received]) -> [String] { deliveries.compactMap(\.type) }

    @Test func oneTaskFansOutToItsCallbackAndTwoFilteredEndpoints() async throws {
        let harness = try await RelayHarness.start()
        let (first, second) = (try await Receiver.start(), try await Receiver.start())
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let hmac = try await Self.create(api, ["url": .string(first.url), "event_types": .array([.string("task.submitted"), .string("task.succeeded")]),
                                               "description": .string("queue consumer")])
        let ed25519 = try await Self.create(api, ["url": .string(second.url), "event_types": .array([.string("task.succeeded"), .string("task.failed")]),
                                                  "signatures": .array([.string("v1a")])])
        let secret = try #require(hmac["secret"]?.stringValue)
        let hmacID = try #require(hmac["id"]?.stringValue)
        let ed25519ID = try #require(ed25519["id"]?.stringValue)
        #expect(ed25519["secret"] == nil, "a v1a endpoint has no shared secret to show")
        let published = try await api.get("/v1/signing-keys").json["data"]
        guard case .array(let keys)? = published else { throw TestFailure("no keys: \(String(describing: published))") }
        #expect(keys.count == 1 && keys.first?["endpoint_id"]?.stringValue == ed25519ID)
        let publicKey = try #require(keys.first?["public_key"]?.stringValue)
        #expect(publicKey == ed25519["public_key"]?.stringValue)
        let otherClient = APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey)
        #expect(try await otherClient.get("/v1/endpoints/\(hmacID)").status == 404, "another client's endpoint is not found")

        let taskID = try await api.submit(harness.request())
        let callback = try await harness.receiver.next(until: { $0.type == "task.succeeded" })
        let toFirst = try await first.hooks.next(until: { $0.type == "task.succeeded" })
        let toSecond = try await second.hooks.next(until: { $0.type == "task.succeeded" })
        #expect(Self.types(callback) == ["task.succeeded"], "the callback keeps the task's own subscription")
        #expect(Self.types(toFirst) == ["task.submitted", "task.succeeded"], "in order, only its types")
        #expect(Self.types(toSecond) == ["task.succeeded"])
        let succeededID = try #require(callback.last?.id)
        #expect(toFirst.last?.id == succeededID && toSecond.last?.id == succeededID, "one event, one webhook-id everywhere")
        #expect(callback.last?.body == toSecond.last?.body, "the same bytes everywhere")
        #expect(callback.allSatisfy { $0.verifies(with: RelayHarness.secret) })
        #expect(toFirst.allSatisfy { $0.verifies(with: secret) && !$0.verifies(with: RelayHarness.secret) }, "each endpoint its own secret")
        #expect(toSecond.allSatisfy { $0.verifies(publicKey: publicKey) && !$0.signature.contains("v1,") })

        try await eventually("four deliveries recorded as delivered") {
            guard case .array(let log)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] else { return false }
            return log.count == 4 && log.allSatisfy { $0["state"] == .string("delivered") }
        }
        let replay = try await api.post("/v1/tasks/\(taskID)/redeliver?destination=\(ed25519ID)", body: Data())
        #expect(replay.status == 202)
        guard case .array(let queued)? = replay.json["data"] else { throw TestFailure("no replay: \(replay.json)") }
        #expect(queued.map { $0["destination"]?.stringValue } == [ed25519ID])
        let again = try await second.hooks.next()
        #expect(again.first?.id == succeededID)
        try await eventually("the replay recorded") {
            guard case .array(let log)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] else { return false }
            return log.allSatisfy { $0["state"] == .string("delivered") }
        }
        guard case .array(let log)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] else { throw TestFailure("no log") }
        let attempts = Dictionary(log.map { ("\($0["destination"]?.stringValue ?? "")/\($0["type"]?.stringValue ?? "")", $0["attempt_log"]) },
                                  uniquingKeysWith: { $1 })
        #expect(attempts["callback/task.succeeded"]??.arrayCount == 1 && attempts["\(hmacID)/task.succeeded"]??.arrayCount == 1,
                "the other destinations were not sent again")
        #expect(attempts["\(ed25519ID)/task.succeeded"]??.arrayCount == 2)
        #expect(harness.receiver.all.count == 1 && first.hooks.all.count == 2)

        // A task without a callback (delivery: stream) still reaches the endpoints.
        let streamed = try await api.submit(.object(["model": .string("veo3.1-fast-official"), "prompt": .string("a quiet harbour"),
                                                     "delivery": .string("stream")]))
        let streamedEvents = try await first.hooks.next(until: { $0.type == "task.succeeded" })
        #expect(Self.types(streamedEvents) == ["task.submitted", "task.succeeded"])
        #expect(streamedEvents.allSatisfy { $0.json["data"]?["task_id"] == .string(streamed) })
        try await harness.stop(relay)
        try await first.server.stop()
        try await second.server.stop()
    }

    @Test func aDeadEndpointDelaysNoOtherDestination() async throws {
        let hang = Latch()
        let dead = try await Receiver.start { _ in
            await hang.wait()
            return .init(status: .ok)
        }
        let healthy = try await Receiver.start()
        let harness = try await RelayHarness.start(tune: { configuration in
            configuration.engine.deliveryTimeout = 60
            configuration.engine.leaseDuration = 120
        })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        _ = try await Self.create(api, ["url": .string(dead.url)])
        _ = try await Self.create(api, ["url": .string(healthy.url), "event_types": .array([.string("task.succeeded")])])
        var tasks: Set<String> = []
        for index in 0..<3 { tasks.insert(try await api.submit(harness.request(prompt: "dead endpoint \(index)"))) }
        // The dead endpoint answers nothing until the end: the others can only be served if it holds no more than its own work.
        let toCallback = try await harness.receiver.next(3)
        let toHealthy = try await healthy.hooks.next(3)
        #expect(Set(toCallback.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == tasks)
        #expect(Set(toHealthy.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == tasks)
        #expect(!hang.isOpen && dead.hooks.all.count <= 3, "each task's first event to the dead endpoint is still unanswered")
        hang.open()
        try await harness.stop(relay)
        try await dead.server.stop()
        try await healthy.server.stop()
    }

    @Test func theTestEventIsSignedAndItsOutcomeAnswered() async throws {
        let harness = try await RelayHarness.start()
        let refusing = try await Receiver.start { _ in .init(status: .serviceUnavailable) }
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let endpoint = try await Self.create(api, ["url": .string(refusing.url), "event_types": .array([.string("budget.warning")]),
                                                   "signatures": .array([.string("v1"), .string("v1a")])])
        let id = try #require(endpoint["id"]?.stringValue)
        let answer = try await api.post("/v1/endpoints/\(id)/test", body: Data())
        #expect(answer.status == 200)
        let result = try #require(answer.json["data"])
        #expect(result["delivered"] == .bool(false) && result["status_code"] == .int(503), "a refusal is an outcome, answered as such")
        let sent = try #require(refusing.hooks.all.first)
        #expect(sent.type == "endpoint.test" && sent.id == result["event_id"]?.stringValue, "sent whatever the filter")
        #expect(sent.verifies(with: try #require(endpoint["secret"]?.stringValue)))
        #expect(sent.verifies(publicKey: try #require(endpoint["public_key"]?.stringValue)), "both signatures in one header")
        #expect(try await api.post("/v1/endpoints/ep_missing/test", body: Data()).status == 404)
        let refused = try await api.post("/v1/endpoints", json: .object(["url": .string(refusing.url), "max_rate": .int(0)]))
        #expect(refused.status == 400 && refused.json["error"]?["param"] == .string("max_rate"))
        let privateURL = try await api.post("/v1/endpoints", json: .object(["url": .string("http://10.1.2.3/in")]))
        #expect(privateURL.status == 400 && privateURL.json["error"]?["param"] == .string("url"), "the callback address rules hold")
        try await harness.stop(relay)
        try await refusing.server.stop()
    }

    /// An endpoint failing every attempt for the configured time is disabled (the client's watcher hears
    /// `endpoint.disabled`); enabled again, it receives what it missed. Time is the test's clock.
    @Test func aFailingEndpointIsDisabledAndReEnablingDeliversItsBacklog() async throws {
        let clock = ManualClock.startingNow()
        let healthy = Mutex(false)
        let failing = try await Receiver.start { _ in .init(status: healthy.withLock { $0 } ? .noContent : .internalServerError) }
        let watcher = try await Receiver.start()
        let harness = try await RelayHarness.start(clock: clock, tune: { configuration in
            configuration.engine.endpointCheckInterval = .milliseconds(20)
            configuration.engine.retrySchedule = RetrySchedule(delays: [0] + Array(repeating: 60, count: 20), jitter: 0)
        })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let failingID = try #require(try await Self.create(api, ["url": .string(failing.url), "event_types": .array([.string("task.succeeded")])])["id"]?.stringValue)
        _ = try await Self.create(api, ["url": .string(watcher.url), "event_types": .array([.string("endpoint.disabled")])])
        let taskID = try await harness.seedFinishedTask()
        let callbackEvent = try await harness.receiver.next()[0]
        #expect(try await failing.hooks.next()[0].id == callbackEvent.id)
        try await eventually("the failure streak to start") {
            try await api.get("/v1/endpoints/\(failingID)").json["data"]?["failing_since"] == .int(Int(clock.now().timeIntervalSince1970))
        }
        clock.advance(by: 4 * 86_400)
        _ = try await failing.hooks.next()
        #expect(try await api.get("/v1/endpoints/\(failingID)").json["data"]?["enabled"] == .bool(true), "four days is not enough")
        clock.advance(by: 86_400 + 1)
        let notice = try await watcher.hooks.next()[0]
        #expect(notice.type == "endpoint.disabled" && notice.json["data"]?["endpoint_id"] == .string(failingID))
        let disabled = try #require(try await api.get("/v1/endpoints/\(failingID)").json["data"])
        #expect(disabled["enabled"] == .bool(false))
        #expect(disabled["disabled_reason"]?.stringValue?.hasPrefix("every attempt failed since") == true)

        healthy.withLock { $0 = true }
        let enabled = try await api.send(.PATCH, "/v1/endpoints/\(failingID)", body: try JSONCoding.encode(JSONValue.object(["enabled": .bool(true)])))
        #expect(enabled.status == 200 && enabled.json["data"]?["enabled"] == .bool(true) && enabled.json["data"]?["failing_since"] == nil)
        let backlog = try await failing.hooks.next(until: { $0.id == callbackEvent.id })
        #expect(backlog.last?.body == callbackEvent.body, "the event it missed, the same bytes")
        try await eventually("the backlog delivered") {
            guard case .array(let log)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"] else { return false }
            return log.first { $0["destination"] == .string(failingID) }?["state"] == .string("delivered")
        }
        try await harness.stop(relay)
        try await failing.server.stop()
        try await watcher.server.stop()
    }

    /// Two relays on one PostgreSQL database send to a `max_rate` endpoint: the attempts, on the test's
    /// clock, never number more than the rate in any second.
    @Test(.enabled(if: TestPostgres.adminURL != nil, "needs the test PostgreSQL"))
    func maxRateHoldsAcrossTwoInstancesOnPostgres() async throws {
        let clock = ManualClock.startingNow()
        let rate = 4
        let slow = try await Receiver.start()
        let harness = try await RelayHarness.start(clock: clock, database: try await TestPostgres.freshDatabase())
        let relays = [try await harness.startRelay(instance: "first"), try await harness.startRelay(instance: "second")]
        let api = APIClient(baseURL: relays[0].baseURL)
        let endpointID = try #require(try await Self.create(api, ["url": .string(slow.url), "event_types": .array([.string("task.succeeded")]),
                                                                  "max_rate": .int(rate)])["id"]?.stringValue)
        let count = 8
        var seeded: [String] = []
        for _ in 0..<count { seeded.append(try await harness.seedFinishedTask()) }
        let tasks = seeded
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { store.close() }
        let target = DeliveryTarget.endpoint(endpointID)
        /// The endpoint's deliveries not yet delivered (one query, so that waiting adds little load).
        @Sendable func waiting() async throws -> [DeliveryRecord] {
            try await store.deliveries(scope: .allClients, state: .pending, limit: 100).filter { $0.key.target == target }
        }
        // The clock moves only once everything due has been sent and recorded, so each attempt's time is its claim's.
        while try await !waiting().isEmpty {
            clock.advance(by: 0.1)
            try await eventually("the relays to catch up with the clock") {
                try await waiting().allSatisfy { ($0.nextAttemptAt ?? .distantFuture) > clock.now() }
            }
        }
        @Sendable func endpointDeliveries() async throws -> [DeliveryRecord] {
            var all: [DeliveryRecord] = []
            for task in tasks { all += try await store.deliveryLog(taskID: task, scope: .allClients)?.filter { $0.key.target == target } ?? [] }
            return all
        }
        let times = try await endpointDeliveries().flatMap(\.attemptLog).map(\.attemptedAt).sorted()
        #expect(times.count == count, "each sent once")
        for index in times.indices.dropLast(rate) {
            #expect(times[index + rate].timeIntervalSince(times[index]) >= 1, "no second holds more than \(rate) sends")
        }
        let perSecond = Dictionary(grouping: slow.hooks.all, by: \.timestamp).mapValues(\.count)
        #expect(perSecond.values.allSatisfy { $0 <= rate }, "by the webhook-timestamp the receiver saw: \(perSecond)")
        #expect(slow.hooks.all.count == count)
        for relay in relays { try await relay.stop() }
        try await harness.stop()
        try await slow.server.stop()
    }
}

extension JSONValue {
    var arrayCount: Int? { if case .array(let items) = self { items.count } else { nil } }
}
