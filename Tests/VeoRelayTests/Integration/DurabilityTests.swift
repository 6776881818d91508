import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Durability and paid-submission safety", .stopsWhatItStarts)
struct DurabilityTests {
    /// An answered intake must survive power loss: the SQLite writer connection syncs each commit
    /// except the repeatable ones (see `RelayStore`), and turns the sync back on after each of those.
    @Test func theSQLiteStoreSyncsEveryCommit() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-sync-\(UUID().uuidString).sqlite").path
        let store = try SQLiteStore(path: path, deadline: TestStores.deadline)
        defer { store.close(); for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let full = 2
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == full)
        #expect(try await store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        // Repeatable writes (claims, attempt records) commit without the sync, and leave it on for the next.
        let normal = 1
        #expect(try await store.repeatableWrite { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == normal)
        _ = try await store.claimDeliveries(now: Date(), limit: 8, lease: Lease(owner: "test", expiresAt: Date().addingTimeInterval(60)), excluding: [])
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == full)
    }

    /// The WAL goes back into the database file from the checkpointer's own connection; the writer's
    /// automatic checkpoint, which would run inside a claim's or an intake's commit, is only a backstop.
    @Test func theWALIsCheckpointedOffTheWritersPath() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-wal-\(UUID().uuidString).sqlite").path
        let store = try SQLiteStore(path: path, deadline: TestStores.deadline)
        defer { store.close(); for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") } == WALCheckpointer.writerBackstopPages)
        let client = Client(id: "client-wal", name: "wal", signingSecret: WebhookSecret.generate().encoded)
        try await store.upsertClient(client, keyHash: "hash-wal", now: Date())
        let request = try RequestValidator().validate(.object(["model": .string("veo3.1-fast-official"), "prompt": .string("wal"),
                                                               "callback_url": .string("https://example.com/hook")]))
        _ = try await store.insert((0..<200).map { _ in TaskInsertion(RelayTask(clientID: client.id, request: request, now: Date()), idempotency: nil) })
        let (frames, copied) = try await store.checkpointer.checkpoint()
        #expect(frames > 0, "the inserts went to the WAL")
        #expect(copied == frames, "all of it is back in the database file")
    }

    /// Stores opened and closed beside a running one that keeps writing, as a tool or a second relay
    /// does beside a relay: every connection a store opens waits out the brief locks of the others
    /// (recovery, a closing connection's checkpoint, a header being rewritten) instead of failing with
    /// "database is locked" (seen in CI, from a connection opened without a busy timeout).
    @Test func storesOpenBesideARunningOneThatWrites() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-reopen-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let running = try SQLiteStore(path: path, deadline: TestStores.deadline)
        defer { running.close() }
        let client = Client(id: "client-reopen", name: "reopen", signingSecret: WebhookSecret.generate().encoded)
        try await running.upsertClient(client, keyHash: "hash-reopen", now: Date())
        let request = try RequestValidator().validate(.object(["model": .string("veo3.1-fast-official"), "prompt": .string("reopen"),
                                                               "callback_url": .string("https://example.com/hook")]))
        @Sendable func insertOne(_ store: any RelayStore) async throws {
            _ = try await store.insert(RelayTask(clientID: client.id, request: request, now: Date()), idempotency: nil)
        }
        let rounds = 3_000
        let written = try await withThrowingTaskGroup(of: Int.self) { group in
            let finished = Latch()
            group.addTask {
                var count = 0
                while !finished.isOpen {
                    try await insertOne(running)
                    count += 1
                }
                return count
            }
            group.addTask {
                defer { finished.open() }
                for round in 0..<rounds {
                    // A whole store now and then; mostly the checkpointer's own connection, the one
                    // that once opened without a busy timeout and is the cheapest to open many times.
                    if round.isMultiple(of: 100) {
                        let store = try await StoreLocation.open(path, logger: TestLog.logger, deadline: TestStores.deadline)
                        try await insertOne(store)
                        store.close()
                    } else {
                        try WALCheckpointer(path: path).stop()
                    }
                }
                return rounds / 100
            }
            return try await group.reduce(0, +)
        }
        #expect(try await running.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tasks") } == written)
    }

    @Test func tasksAcceptedBeforeARestartAllGetTheirWebhook() async throws {
        // Jobs are held until the second relay runs, so none can finish before the restart.
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.holdJobs = true
        let harness = try await RelayHarness.start(simulator: simulator)
        let first = try await harness.startRelay(instance: "relay-a")
        let api = APIClient(baseURL: first.baseURL)
        var accepted: Set<String> = []
        for index in 0..<6 {
            accepted.insert(try await api.submit(harness.request(prompt: "durability \(index)")))
        }
        try await first.stop()
        #expect(harness.receiver.all.isEmpty, "no task may have finished before the restart")

        let second = try await harness.startRelay(instance: "relay-b")
        harness.simulator.releaseJobs()
        let deliveries = try await harness.receiver.next(accepted.count)
        #expect(Set(deliveries.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == accepted)
        #expect(deliveries.allSatisfy { $0.json["type"] == .string("task.succeeded") && $0.verifies(with: RelayHarness.secret) })
        #expect(harness.simulator.maxSubmissionsOfOneRequest == 1, "a restart must not resubmit")
        #expect(harness.simulator.totalSubmissions == accepted.count)
        try await harness.stop(second)
    }

    @Test func aSubmissionCutOffMidFlightIsFailedAndNeverResent() async throws {
        let clock = ManualClock.startingNow()
        let harness = try await RelayHarness.start(clock: clock)
        // A relay that died with the request on the wire: the task is `submitting` under its lease.
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        _ = try await ClientBootstrap.run(store: store, apiKeys: [RelayHarness.apiKey], webhookSecret: RelayHarness.secret, now: clock.now())
        let clientID = RelayHarness.clientID
        let request = try RequestValidator().validate(harness.request())
        _ = try await store.insert(RelayTask(clientID: clientID, request: request, now: clock.now()), idempotency: nil)
        let lease = Lease(owner: "crashed-relay", expiresAt: clock.now().addingTimeInterval(60))
        var task = try #require(try await store.claimTasks(.submission(), now: clock.now(), limit: 1, lease: lease).first)
        task.beginSubmission()
        try await store.save(task, lease: lease, keepLease: true, event: nil)

        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        // While the dead relay's lease runs, nobody touches the task.
        #expect(try await api.get("/v1/tasks/\(task.id)").json["data"]?["status"] == .string("pending"))
        clock.advance(by: 61)

        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.json["type"] == .string("task.failed"))
        #expect(delivery.json["data"]?["task_id"] == .string(task.id))
        #expect(delivery.json["data"]?["error"]?["code"] == .string("submission_outcome_unknown"))
        #expect(harness.simulator.totalSubmissions == 0)
        try await harness.stop(relay)
    }

    @Test func anUpstreamThatCannotBeReachedIsRetriedNotFailed() async throws {
        // Nothing listens on the upstream address at first: the request never left, so retry.
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay { configuration in
            configuration.upstream = .remote(url: "http://127.0.0.1:1", apiKey: RelayHarness.upstreamKey)
            configuration.engine.upstreamConnectTimeout = 0.2
        }
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        let store = try SQLiteStore(path: harness.databasePath, deadline: TestStores.deadline)
        let clientID = RelayHarness.clientID
        try await eventually("a failed submission attempt") {
            (try await store.task(id: taskID, scope: .client(clientID))?.failures ?? 0) >= 2
        }
        try await relay.stop()
        // Stopped gracefully, so no attempt is in flight: the task waits in the queue, not failed.
        let task = try #require(try await store.task(id: taskID, scope: .client(clientID)))
        #expect(task.state == .queued)
        #expect(task.error == nil)
        #expect(harness.receiver.all.isEmpty)

        // The upstream comes back (here: the relay is pointed at it); the same task goes through.
        let healed = try await harness.startRelay()
        let delivery = try #require(try await harness.receiver.next().first)
        #expect(delivery.json["data"]?["task_id"] == .string(taskID))
        #expect(delivery.json["type"] == .string("task.succeeded"))
        try await harness.stop(healed)
    }
}
