import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
@testable import VeoRelay
import VeoRelayDevTools

/// Relay + upstream simulator + webhook receiver, each a real HTTP server on loopback.
struct RelayHarness: Sendable {
    static let apiKey = "relay-test-key"
    /// A second client, for isolation tests.
    static let otherAPIKey = "relay-test-key-other"
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let upstreamKey = "upstream-test-key"

    let simulator: UpstreamSimulator
    let simulatorServer: RunningServer
    let receiver: WebhookReceiver
    let receiverServer: RunningServer
    let databasePath: String
    let configuration: RelayConfiguration
    let clock: any WallClock

    var callbackURL: String { receiverServer.baseURL + "/hooks/veo" }

    /// Jobs take 0.12–0.36 s (the real 60–360 s compressed 500×); polls and retries are fast.
    static func start(
        simulator simulatorConfiguration: SimulatorConfiguration = SimulatorConfiguration(apiKey: upstreamKey, timeScale: 0.002),
        receiverAnswer: @escaping @Sendable (Int) async -> WebhookReceiver.Answer = { _ in .init(status: .noContent) },
        clock: any WallClock = SystemClock(),
        database: String? = nil,
        tune: (inout RelayConfiguration) -> Void = { _ in }
    ) async throws -> RelayHarness {
        let simulator = UpstreamSimulator(configuration: simulatorConfiguration)
        let router = Router()
        router.middlewares.add(ErrorEnvelopeMiddleware(logger: TestLog.logger))
        simulator.addRoutes(to: router)
        let simulatorServer = try await RunningServer.start(router: router)
        let receiver = WebhookReceiver(answer: receiverAnswer)
        let receiverServer = try await receiver.start()

        var configuration = RelayConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.upstream = .remote(url: simulatorServer.baseURL, apiKey: upstreamKey)
        configuration.apiKeys = [apiKey, otherAPIKey]
        // Everything here is on loopback: allow it explicitly, as an operator would for a demo.
        configuration.callbacks.allowHTTP = true
        configuration.callbacks.addresses.allowed = [IPNetwork("127.0.0.0/8")!]
        configuration.rateLimit.rate = 1_000
        configuration.rateLimit.burst = 1_000
        configuration.webhookSecret = secret
        configuration.engine.polling.floor = 0.01
        configuration.engine.polling.ceiling = 0.05
        configuration.engine.polling.defaultEstimates = [.fast: 0.12, .quality: 0.24]
        configuration.engine.idleInterval = .milliseconds(20)
        configuration.engine.upstreamBackoff = Backoff(base: 0.02, maximum: 0.1)
        configuration.engine.retrySchedule = RetrySchedule(delays: [0, 0.05, 0.1, 0.2], jitter: 0)
        // A loaded machine may take seconds for a database call: the tests check behaviour, not speed
        // (the database-fault tests set their own, short, limit).
        configuration.databaseTimeout = .seconds(60)
        tune(&configuration)
        let databasePath = database ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("veo-relay-test-\(UUID().uuidString).sqlite").path
        return RelayHarness(simulator: simulator, simulatorServer: simulatorServer, receiver: receiver,
                            receiverServer: receiverServer, databasePath: databasePath, configuration: configuration, clock: clock)
    }

    /// Starts a relay instance on the harness's database; several may run one after another.
    func startRelay(instance: String = UUID().uuidString, resolver: any HostResolver = SystemResolver(),
                    logger: Logger = TestLog.logger, tune: (inout RelayConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var configuration = self.configuration
        configuration.databasePath = databasePath
        configuration.instanceID = instance
        tune(&configuration)
        let clock = self.clock
        return try await RunningServer.start { [configuration] onRunning in
            try await buildRelay(configuration, clock: clock, logger: logger, resolver: resolver, onServerRunning: onRunning).application
        }
    }

    func stop(_ relays: RunningServer...) async throws {
        for relay in relays { try await relay.stop() }
        try await simulatorServer.stop()
        try await receiverServer.stop()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databasePath + suffix) }
    }

    /// A task that has finished upstream and whose `task.succeeded` event waits for delivery,
    /// written straight to the store (for delivery tests that drive time by hand).
    func seedFinishedTask(callbackURL: String? = nil) async throws -> String {
        let store = try await StoreLocation.open(databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { store.close() }
        let now = clock.now()
        _ = try await ClientBootstrap.run(store: store, apiKeys: configuration.apiKeys, webhookSecret: configuration.webhookSecret, now: now)
        var request = try RequestValidator().validate(self.request())
        request.callbackURL = callbackURL ?? self.callbackURL
        // Due only in a day, so that a relay already running cannot claim it before this seed does.
        var fresh = RelayTask(clientID: Self.clientID, request: request, now: now)
        fresh.nextRunAt = now.addingTimeInterval(86_400)
        _ = try await store.insert(fresh, idempotency: nil)
        let lease = Lease(owner: "seed", expiresAt: now.addingTimeInterval(86_460))
        guard var task = try await store.claimTasks(.submission(), now: now.addingTimeInterval(86_400), limit: 1, lease: lease)
            .first(where: { $0.id == fresh.id }) else { throw TestFailure("could not claim the seeded task") }
        task.beginSubmission()
        task.submitted(UpstreamSubmission(taskID: "task_seeded", answer: ""), at: now, firstPollAt: now)
        let completed = UpstreamTaskView(status: "completed", progress: 100, result: .object(["videos": .array([.object([
            "url": .string("https://videos.example/seeded.mp4"), "expires_at": .int(Int(now.timeIntervalSince1970) + 86_400)])])]))
        let type = task.observe(completed, at: now, nextPollAt: now)
        try await TaskTransitions(store: store, clock: clock, dispatcherWake: WakeSignal()).save(task, lease: lease, announcing: type)
        return task.id
    }

    static let clientID = ClientBootstrap.configuredPrefix + APIKey.hash(apiKey).prefix(12)

    /// A valid request body with the receiver as callback.
    func request(prompt: String = "a golden retriever running on the beach, sunset, cinematic",
                 extra: [String: JSONValue] = [:]) -> JSONValue {
        Self.generation(callbackURL: callbackURL, prompt: prompt, extra: extra)
    }

    /// A valid request body with `callbackURL` as callback.
    static func generation(callbackURL: String, prompt: String = "a golden retriever running on the beach, sunset, cinematic",
                           extra: [String: JSONValue] = [:]) -> JSONValue {
        var fields: [String: JSONValue] = ["model": .string("veo3.1-fast-official"), "prompt": .string(prompt),
                                           "callback_url": .string(callbackURL)]
        fields.merge(extra) { $1 }
        return .object(fields)
    }
}

/// Calls the relay's API over HTTP, as a client would.
struct APIClient: Sendable {
    let baseURL: String
    var key: String? = RelayHarness.apiKey

    struct Answer: Sendable {
        var status: Int
        var json: JSONValue
        var headers: [String: String] = [:]
        /// The body as text (for answers that are not JSON, like `/metrics`).
        var text = ""
        /// The body as sent (for binary answers, like a stored video).
        var bytes = Data()

        var taskID: String? { submitted?["task_id"]?.stringValue }
        var watchURL: String? { submitted?["watch_url"]?.stringValue }

        private var submitted: JSONValue? {
            guard case .array(let entries)? = json["data"] else { return nil }
            return entries.first
        }
    }

    func post(_ path: String, json: JSONValue) async throws -> Answer {
        try await post(path, body: try JSONCoding.encode(json))
    }

    func post(_ path: String, body: Data) async throws -> Answer {
        try await send(.POST, path, body: body)
    }

    func get(_ path: String) async throws -> Answer {
        try await send(.GET, path, body: nil)
    }

    func send(_ method: HTTPMethod, _ path: String, body: Data?, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), json: (try? JSONValue.parse(Data(buffer: bytes))) ?? .null,
                      headers: Dictionary(response.headers.map { ($0.name.lowercased(), $0.value) }) { $1 },
                      text: String(buffer: bytes), bytes: Data(buffer: bytes))
    }

    /// Submits and returns the relay task id.
    func submit(_ json: JSONValue) async throws -> String {
        let answer = try await post("/v1/videos/generations", json: json)
        guard answer.status == 200, let id = answer.taskID else {
            throw TestFailure("submission refused: \(answer.status) \(answer.json)")
        }
        return id
    }
}
