import Foundation
import HTTPTypes
import Logging
import Synchronization
import Testing
@testable import VeoRelay

/// A resolver that answers from a table, like a DNS server the test controls.
struct FakeResolver: HostResolver {
    var answers: [String: [String]]

    func addresses(of host: String) async throws -> [[UInt8]] {
        guard let addresses = answers[host] else { throw SystemResolver.ResolutionError(host: host) }
        return addresses.compactMap(IPNetwork.parseAddress)
    }
}

@Suite("SSRF guard", .stopsWhatItStarts)
struct SSRFGuardTests {
    static let blocked = [
        "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "100.127.255.255", "224.0.0.1", "239.255.255.250", "0.0.0.0", "255.255.255.255",
        "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "::127.0.0.1",
    ]
    static let allowed = ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]

    @Test(arguments: blocked)
    func refusesEveryNonPublicAddressClass(_ address: String) throws {
        #expect(!AddressPolicy().allows(try #require(IPNetwork.parseAddress(address))))
    }

    @Test(arguments: allowed)
    func allowsPublicAddresses(_ address: String) throws {
        #expect(AddressPolicy().allows(try #require(IPNetwork.parseAddress(address))))
    }

    @Test func anAllowlistOpensOnlyItsNetwork() throws {
        let policy = AddressPolicy(allowed: [try #require(IPNetwork("127.0.0.0/8"))])
        #expect(policy.allows(try #require(IPNetwork.parseAddress("127.0.0.1"))))
        #expect(policy.allows(try #require(IPNetwork.parseAddress("::ffff:127.0.0.1"))))
        #expect(!policy.allows(try #require(IPNetwork.parseAddress("10.0.0.1"))))
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("not-an-ip/8") == nil)
    }

    /// A relay with the production policy (https only, nothing private) but for its test resolver.
    static func strictRelay(_ harness: RelayHarness, resolver: any HostResolver = SystemResolver(),
                            tune: (inout RelayConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        try await harness.startRelay(resolver: resolver) { configuration in
            configuration.callbacks = CallbackGuard.Policy()
            tune(&configuration)
        }
    }

    @Test func intakeRefusesCallbacksToBlockedLiteralsAndHostnames() async throws {
        let harness = try await RelayHarness.start()
        // One host name per blocked address, plus one whose answers mix a public and a private address.
        var answers = Dictionary(uniqueKeysWithValues: Self.blocked.enumerated().map { ("blocked-\($0.offset).example", [$0.element]) })
        answers["mixed.example"] = ["93.184.216.34", "192.168.0.10"]
        answers["public.example"] = ["93.184.216.34"]
        let relay = try await Self.strictRelay(harness, resolver: FakeResolver(answers: answers))
        let api = APIClient(baseURL: relay.baseURL)
        var refused = Self.blocked.map { address in address.contains(":") ? "https://[\(address)]/hook" : "https://\(address)/hook" }
        refused += Self.blocked.indices.map { "https://blocked-\($0).example/hook" }
        refused += ["https://mixed.example/hook", "https://unknown.example/hook", "http://public.example/hook"]
        for url in refused {
            let answer = try await api.post("/v1/videos/generations", json: harness.request(extra: ["callback_url": .string(url)]))
            #expect(answer.status == 400, "\(url)")
            #expect(answer.json["error"]?["param"] == .string("callback_url"), "\(url)")
        }
        let accepted = try await api.post("/v1/videos/generations",
                                          json: harness.request(extra: ["callback_url": .string("https://public.example/hook")]))
        #expect(accepted.status == 200)
        #expect(harness.simulator.totalSubmissions <= 1, "only the public callback's task may reach the upstream")
        try await harness.stop(relay)
    }

    @Test func intakeRefusesLocalhostThroughTheSystemResolver() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await Self.strictRelay(harness) { $0.callbacks.allowHTTP = true }
        let answer = try await APIClient(baseURL: relay.baseURL).post("/v1/videos/generations", json: harness.request())
        #expect(answer.status == 400)
        #expect(answer.json["error"]?["message"]?.stringValue?.contains("127.0.0.1") == true)
        try await harness.stop(relay)
    }

    @Test func imageURLsAreCheckedWhenAskedTo() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay { $0.callbacks.checkImageURLs = true }
        let answer = try await APIClient(baseURL: relay.baseURL).post("/v1/videos/generations", json: harness.request(extra: [
            "first_frame_image": .string("https://10.0.0.1/frame.png")]))
        #expect(answer.status == 400)
        #expect(answer.json["error"]?["param"] == .string("first_frame_image"))
        try await harness.stop(relay)
    }

    @Test func aHostThatRebindsToLoopbackAfterIntakeIsNotCalled() async throws {
        let harness = try await RelayHarness.start()
        // At intake "localhost" answers with a public address; the connection then lands on 127.0.0.1.
        let relay = try await Self.strictRelay(harness, resolver: FakeResolver(answers: ["localhost": ["93.184.216.34"]])) {
            $0.callbacks.allowHTTP = true
            $0.engine.retrySchedule = RetrySchedule(delays: [0], jitter: 0)
            $0.engine.deliveryTimeout = 1
        }
        let url = "http://localhost:\(harness.receiverServer.port)/hooks/veo"
        let taskID = try await APIClient(baseURL: relay.baseURL).submit(harness.request(extra: ["callback_url": .string(url)]))
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        try await eventually("the refused attempt to be recorded") {
            try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last?.state == .failed
        }
        let attempt = try #require(try await store.deliveryLog(taskID: taskID, scope: .client(RelayHarness.clientID))?.last?.attemptLog.first)
        #expect(attempt.error?.contains("does not call") == true, "\(attempt.error ?? "no error")")
        #expect(harness.receiver.all.isEmpty, "the loopback receiver was never reached")
        try await harness.stop(relay)
    }

    @Test func aRedirectIsNeverFollowed() async throws {
        let target = WebhookReceiver()
        let targetServer = try await target.start()
        let harness = try await RelayHarness.start(receiverAnswer: { _ in
            .init(status: .found, headers: [.location: targetServer.baseURL + "/latest/meta-data"])
        }, tune: { $0.engine.retrySchedule = RetrySchedule(delays: [0], jitter: 0) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        _ = try await harness.receiver.next()
        try await eventually("the 302 to be recorded") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("failed")
        }
        #expect(try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["last_status_code"] == .int(302))
        #expect(target.all.isEmpty)
        try await harness.stop(relay)
        try await targetServer.stop()
    }
}

@Suite("Tenants, limits and secrets", .stopsWhatItStarts)
struct TenantTests {
    @Test func oneClientCannotSeeOrTouchAnothersTasks() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let alice = APIClient(baseURL: relay.baseURL)
        let bob = APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey)
        let taskID = try await alice.submit(harness.request())
        _ = try await harness.receiver.next()
        try await eventually("the delivery to be recorded") {
            try await alice.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("delivered")
        }
        #expect(try await bob.get("/v1/tasks/\(taskID)").status == 404)
        #expect(try await bob.get("/v1/tasks/\(taskID)/deliveries").status == 404)
        #expect(try await bob.post("/v1/tasks/\(taskID)/redeliver", body: Data()).status == 404)
        #expect(try await bob.get("/v1/deliveries?state=delivered").json["data"] == .array([]))
        guard case .array(let mine)? = try await alice.get("/v1/deliveries?state=delivered").json["data"] else {
            throw TestFailure("no list")
        }
        #expect(mine.count == 1)
        #expect(harness.receiver.all.count == 1, "bob's redeliver did nothing")
        try await harness.stop(relay)
    }

    @Test func aClientOverItsRateGets429WithRetryAfterAndOthersDoNot() async throws {
        // The test's clock stands still: no token comes back between the requests, however slow the machine.
        let harness = try await RelayHarness.start(clock: ManualClock.startingNow(), tune: {
            $0.rateLimit.rate = 0.5
            $0.rateLimit.burst = 2
        })
        let relay = try await harness.startRelay()
        let alice = APIClient(baseURL: relay.baseURL)
        #expect(try await alice.get("/v1/tasks/task_a").status == 404)
        #expect(try await alice.get("/v1/tasks/task_b").status == 404)
        let limited = try await alice.send(.GET, "/v1/tasks/task_c", body: nil)
        #expect(limited.status == 429)
        #expect(limited.json["error"]?["type"] == .string("rate_limit_error"))
        #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(try await APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey).get("/v1/tasks/task_a").status == 404)
        try await harness.stop(relay)
    }

    @Test func logsNeverContainAConfiguredSecret() async throws {
        let capture = LogCapture()
        let logger = Logger(label: "veo-relay") { label in capture.handler(label: label) }
        let harness = try await RelayHarness.start(receiverAnswer: { attempt in .init(status: attempt == 1 ? .internalServerError : .ok) })
        let relay = try await harness.startRelay(logger: logger)
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        _ = try await harness.receiver.next(2)
        _ = try await APIClient(baseURL: relay.baseURL, key: "wrong-\(RelayHarness.apiKey)").get("/v1/tasks/\(taskID)")
        _ = try await api.post("/v1/tasks/\(taskID)/redeliver", body: Data())
        _ = try await harness.receiver.next()
        try await harness.stop(relay)

        let text = capture.text
        #expect(text.contains(taskID), "the capture holds the relay's logs")
        let secretBody = String(RelayHarness.secret.dropFirst("whsec_".count))
        for secret in [RelayHarness.apiKey, RelayHarness.otherAPIKey, RelayHarness.secret, secretBody, RelayHarness.upstreamKey] {
            #expect(!text.contains(secret), "a secret reached the logs")
        }
    }
}
