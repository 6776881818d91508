import Foundation
import PostgresNIO
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("PostgreSQL store", .stopsWhatItStarts, .enabled(if: TestPostgres.adminURL != nil, "set VEO_RELAY_TEST_POSTGRES_URL (scripts/test does)"))
struct PostgresTests {
    @Test func twoRelaysSharingOneDatabaseDeliverEveryTaskExactlyOnce() async throws {
        let harness = try await RelayHarness.start(database: try await TestPostgres.freshDatabase())
        let first = try await harness.startRelay(instance: "relay-a")
        let second = try await harness.startRelay(instance: "relay-b")
        var accepted: Set<String> = []
        for index in 0..<20 {
            let relay = index.isMultiple(of: 2) ? first : second
            accepted.insert(try await APIClient(baseURL: relay.baseURL).submit(harness.request(prompt: "shared database \(index)")))
        }
        let deliveries = try await harness.receiver.next(accepted.count)
        let ids = deliveries.compactMap { $0.json["data"]?["task_id"]?.stringValue }
        #expect(Set(ids) == accepted)
        #expect(ids.count == Set(ids).count, "no task delivered twice")
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 1, "no task submitted twice")
        #expect(harness.simulator.totalSubmissions == accepted.count)
        // Either instance answers for every task: the state is in the shared database.
        for id in accepted {
            #expect(try await APIClient(baseURL: second.baseURL).get("/v1/tasks/\(id)").json["data"]?["status"] == .string("completed"))
        }
        try await harness.stop(first, second)
    }

    /// Claims are repeatable writes (see `RelayStore`): each is one statement, its own transaction when
    /// the store runs it, and sets that transaction to commit without waiting for its WAL flush. Run
    /// inside a transaction of the test's, the setting its commit would read can be read back.
    @Test func aClaimIsOneStatementThatCommitsWithoutWaitingForItsFlush() async throws {
        let url = try await TestPostgres.freshDatabase()
        let store = try await PostgresStore(url: url, logger: TestLog.logger)
        defer { store.close() }
        let client = Client(id: "client-pg-claim", name: "claim", signingSecret: WebhookSecret.generate().encoded)
        try await store.upsertClient(client, keyHash: "hash-pg-claim", now: Date())
        let request = try RequestValidator().validate(.object(["model": .string("veo3.1-fast-official"), "prompt": .string("claim"),
                                                               "callback_url": .string("https://example.com/hook")]))
        _ = try await store.insert(RelayTask(clientID: client.id, request: request, now: Date()), idempotency: nil)
        let now = Date().addingTimeInterval(1)
        let lease = Lease(owner: "test", expiresAt: now.addingTimeInterval(60))
        let (claimed, before, after) = try await TestPostgres.inTransaction(url) { connection in
            func setting() async throws -> String? {
                try await connection.query("SHOW synchronous_commit", logger: TestLog.logger).collect().first?.decode(String.self)
            }
            let before = try await setting()
            var binds = PostgresStore.bindings(now: now.timeIntervalSince1970, limit: 16, lease: lease, silentSince: now.timeIntervalSince1970)
            binds.append(UpstreamKey.configuredName)
            binds.appendNull()
            binds.append(16)
            let claim = PostgresQuery(unsafeSQL: PostgresStore.claimStatement(.submission()), binds: binds)
            let claimed = try await connection.query(claim, logger: TestLog.logger).collect().count
            return (claimed, before, try await setting())
        }
        #expect(claimed == 1)
        #expect(before == "on")
        #expect(after == "off")
    }

    @Test func tasksAcceptedBeforeARestartAllGetTheirWebhook() async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.holdJobs = true
        let harness = try await RelayHarness.start(simulator: simulator, database: try await TestPostgres.freshDatabase())
        let first = try await harness.startRelay(instance: "relay-a")
        var accepted: Set<String> = []
        for index in 0..<5 {
            accepted.insert(try await APIClient(baseURL: first.baseURL).submit(harness.request(prompt: "pg durability \(index)")))
        }
        try await first.stop()
        #expect(harness.receiver.all.isEmpty)
        let second = try await harness.startRelay(instance: "relay-b")
        harness.simulator.releaseJobs()
        let deliveries = try await harness.receiver.next(accepted.count)
        #expect(Set(deliveries.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == accepted)
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 1)
        try await harness.stop(second)
    }

    /// Two relays on one database: a refusal one of them met holds the other's submissions too (so the
    /// broke account is asked a bounded number of times, not once per task), one probe at a time goes
    /// from either, and the release lets both work the queue.
    @Test func twoRelaysHoldOnOneRefusalAndResumeOnOneProbe() async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.accountRefusal = .balance
        let clock = ShiftedClock()
        let harness = try await RelayHarness.start(simulator: simulator, clock: clock, database: try await TestPostgres.freshDatabase())
        let (logA, logB) = (LogCapture(), LogCapture())
        let a = try await harness.startRelay(instance: "relay-a", logger: logA.logger)
        let b = try await harness.startRelay(instance: "relay-b", logger: logB.logger)
        var ids: Set<String> = []
        for n in 0..<60 { ids.insert(try await APIClient(baseURL: (n % 2 == 0 ? a : b).baseURL).submit(harness.request(prompt: "pg broke \(n)"))) }
        try await eventually("a relay to meet the refusal") {
            logA.text.contains("the upstream account refuses work") || logB.text.contains("the upstream account refuses work")
        }
        let windowStart = clock.now()
        clock.advance(by: AccountProbes.first)
        try await eventually("a probe") { logA.text.contains("probing the upstream account") || logB.text.contains("probing the upstream account") }
        harness.simulator.reconfigure { $0.accountRefusal = nil }
        clock.advance(by: 2 * AccountProbes.first)
        let finished = try await harness.receiver.next(60, within: .seconds(120))
        #expect(Set(finished.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == ids)
        #expect(finished.allSatisfy { $0.type == "task.succeeded" })
        #expect(harness.simulator.totalSubmissions == 60 && harness.simulator.maxSubmissionsOfOneRequest == 1, "each paid once")
        let probes = [logA, logB].map { $0.text.components(separatedBy: "probing the upstream account").count - 1 }.reduce(0, +)
        let window = clock.now().timeIntervalSince(windowStart) + AccountProbes.first
        #expect(probes >= 1 && probes <= 1 + Int(window / AccountProbes.first), "\(probes) probes from both relays in \(window) s")
        // Besides the probes, only what each relay had on its way when the first refusal came back.
        #expect(harness.simulator.accountRefusals - probes <= 2 * harness.configuration.engine.submitters,
                "\(harness.simulator.accountRefusals) refusals for 60 tasks")
        try await harness.stop(a, b)
    }

    @Test func idempotencyDeadLettersAndReplayBehaveAsOnSQLite() async throws {
        let harness = try await RelayHarness.start(
            receiverAnswer: { attempt in attempt <= 2 ? .init(status: .serviceUnavailable) : .init(status: .ok) },
            database: try await TestPostgres.freshDatabase(),
            tune: { $0.engine.retrySchedule = RetrySchedule(delays: [0, 0.05], jitter: 0) })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let body = try JSONCoding.encode(harness.request(prompt: "pg once"))
        let key = [("Idempotency-Key", "pg-1")]
        let first = try await api.send(.POST, "/v1/videos/generations", body: body, headers: key)
        let again = try await api.send(.POST, "/v1/videos/generations", body: body, headers: key)
        let taskID = try #require(first.taskID)
        #expect(again.taskID == taskID)
        #expect(try await api.send(.POST, "/v1/videos/generations", body: try JSONCoding.encode(harness.request(prompt: "other")),
                                   headers: key).status == 409)

        _ = try await harness.receiver.next(2)
        try await eventually("the budget to be spent") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("failed")
        }
        guard case .array(let deadLetters)? = try await api.get("/v1/deliveries?state=failed").json["data"] else { throw TestFailure("no list") }
        #expect(deadLetters.map { $0["task_id"] } == [.string(taskID)])
        guard case .array(let log)? = try await api.get("/v1/tasks/\(taskID)/deliveries").json["data"],
              case .array(let attempts)? = log.first?["attempt_log"] else { throw TestFailure("no attempt log") }
        #expect(attempts.count == 2)
        #expect(try await api.post("/v1/tasks/\(taskID)/redeliver", body: Data()).status == 202)
        #expect(try await harness.receiver.next()[0].id == harness.receiver.all[0].id)
        try await eventually("the replay to be delivered") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("delivered")
        }
        #expect(try await APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey).get("/v1/tasks/\(taskID)").status == 404)
        #expect(harness.simulator.totalSubmissions == 1)
        try await harness.stop(relay)
    }
}
