import Foundation
import NIOCore
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// The database hangs (a partition: connections stay open, nothing answers) or fills up. Requests get
/// a bounded 503 that says why, workers resume by themselves, and an upstream answer in hand is never
/// dropped for a write that could not be made yet.
@Suite("Database faults", .stopsWhatItStarts)
struct DatabaseFaultTests {
    @Test(.enabled(if: TestPostgres.adminURL != nil))
    func aPartitionedPostgresAnswers503AndASubmissionAnsweredMeanwhileIsRecordedAfterwards() async throws {
        let database = try #require(URLComponents(string: try await TestPostgres.freshDatabase()))
        let proxy = try await PartitionProxy(to: try SocketAddress(ipAddress: "127.0.0.1", port: database.port ?? 5432))
        var proxied = database
        proxied.host = "127.0.0.1"
        proxied.port = proxy.port
        // Short enough that requests during the partition answer 503 soon, long enough that a loaded
        // machine answers the calls before it in time.
        let harness = try await RelayHarness.start(database: try #require(proxied.string)) { configuration in
            configuration.databaseTimeout = .seconds(5)
        }
        let capture = LogCapture()
        let relay = try await harness.startRelay(logger: capture.logger)
        let api = APIClient(baseURL: relay.baseURL)

        harness.simulator.submissions.close()
        let taskID = try await api.submit(harness.request())
        await harness.simulator.submissions.arrivals(atLeast: 1)
        proxy.partition()

        let read = try await api.get("/v1/tasks/\(taskID)")
        #expect(read.status == 503, "\(read.json)")
        #expect(read.json["error"]?["type"] == .string("unavailable"))
        #expect(read.json["error"]?["message"]?.stringValue?.contains("PostgreSQL at 127.0.0.1:\(proxy.port)") == true, "\(read.json)")
        #expect(read.headers["retry-after"] == "5")
        let intake = try await api.post("/v1/videos/generations", json: harness.request(prompt: "during the partition"))
        #expect(intake.status == 503 && intake.json["error"]?["type"] == .string("unavailable"), "\(intake.json)")
        let readiness = try await APIClient(baseURL: relay.baseURL, key: nil).get("/readyz")
        #expect(readiness.status == 503, "\(readiness.json)")

        // The upstream accepts the paid job while the database cannot hear about it.
        harness.simulator.submissions.open()
        try await capture.line(containing: "an upstream answer could not be written yet")
        proxy.heal()

        let finished = try await harness.receiver.next()[0]
        #expect(finished.json["type"] == .string("task.succeeded"), "\(finished.json)")
        #expect(finished.json["data"]?["task_id"] == .string(taskID))
        #expect(harness.simulator.totalSubmissions == 1, "paid once")
        #expect(try await api.get("/v1/tasks/\(taskID)").json["data"]?["status"] == .string("completed"))
        #expect(try await APIClient(baseURL: relay.baseURL, key: nil).get("/readyz").status == 200, "ready again")
        try await harness.stop(relay)
        try await proxy.stop()
    }
}

extension DatabaseFaultTests {
    /// A database that takes the connection but does not answer may answer later: opening it fails with a
    /// fault the start waits out (`StartupWait`). (A refused connection fails the start at once: `StartupTests`.)
    @Test(.enabled(if: TestPostgres.adminURL != nil))
    func openingAPartitionedPostgresIsAFaultToWaitOut() async throws {
        let database = try #require(URLComponents(string: try await TestPostgres.freshDatabase()))
        let proxy = try await PartitionProxy(to: try SocketAddress(ipAddress: "127.0.0.1", port: database.port ?? 5432))
        var proxied = database
        proxied.host = "127.0.0.1"
        proxied.port = proxy.port
        proxy.partition()
        await #expect(throws: StorageFault.unavailable(database: "PostgreSQL at 127.0.0.1:\(proxy.port)", after: .seconds(4))) {
            _ = try await StoreLocation.open(try #require(proxied.string), logger: TestLog.logger)
        }
        try await proxy.stop()
    }
}

/// The small filesystem `scripts/test` mounts for the full-disk test (`VEO_RELAY_TEST_SMALL_FS`).
enum SmallFilesystem {
    static let path = ProcessInfo.processInfo.environment["VEO_RELAY_TEST_SMALL_FS"].flatMap { $0.isEmpty ? nil : $0 }

    /// Writes a file until the filesystem has no space left; removing it frees the space again.
    static func fill(_ directory: String) throws -> URL {
        let filler = URL(fileURLWithPath: directory).appendingPathComponent("filler-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: filler.path, contents: nil)
        try topUp(filler)
        return filler
    }

    /// Takes whatever space was freed since (SQLite gives some back when it truncates its WAL).
    static func topUp(_ filler: URL) throws {
        let handle = try FileHandle(forWritingTo: filler)
        defer { try? handle.close() }
        _ = try handle.seekToEnd()
        let chunk = Data(count: 64 * 1024)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        // The last bytes that fit, so that not even a page is left.
        let byte = Data(count: 1)
        while (try? handle.write(contentsOf: byte)) != nil {}
    }
}

/// One at a time: the tests share the one small filesystem.
@Suite("Full storage", .stopsWhatItStarts, .serialized)
struct FullStorageTests {
    @Test(.enabled(if: SmallFilesystem.path != nil))
    func aFullDiskAnswers503WithItsOwnMessageLogsSparinglyAndRecoversWhenSpaceReturns() async throws {
        let directory = try #require(SmallFilesystem.path)
        let databasePath = directory + "/relay-\(UUID().uuidString).sqlite"
        let harness = try await RelayHarness.start(database: databasePath)
        let capture = LogCapture()
        let relay = try await harness.startRelay(logger: capture.logger)
        let api = APIClient(baseURL: relay.baseURL)
        let before = try await api.submit(harness.request(prompt: "accepted before the disk filled"))
        _ = try await harness.receiver.next()

        let filler = try SmallFilesystem.fill(directory)
        // The WAL reuses space it already has until a checkpoint cannot grow the database: write until refused.
        var refused: APIClient.Answer?
        for n in 0..<500 where refused == nil {
            let answer = try await api.post("/v1/videos/generations", json: harness.request(prompt: "filling \(n)"))
            if answer.status != 200 { refused = answer }
        }
        let first = try #require(refused, "the full disk refused an intake")
        #expect(first.status == 503 && first.json["error"]?["type"] == .string("storage_full"), "\(first.json)")
        #expect(first.headers["retry-after"] == "30")
        #expect(first.json["error"]?["message"]?.stringValue?.contains("storage is full") == true)

        // While the disk stays full, every intake is refused with storage_full, except one SQLite can
        // commit inside space its files already hold (a WAL that restarts from its beginning): that
        // one is durably stored, so accepting it is right. Never any other answer.
        let started = ContinuousClock.now
        var refusals = 0
        for n in 0..<100 {
            try SmallFilesystem.topUp(filler) // space SQLite gave back (truncating its WAL) is taken again
            let answer = try await api.post("/v1/videos/generations", json: harness.request(prompt: "refused \(n)"))
            let refused = answer.status == 503 && answer.json["error"]?["type"] == .string("storage_full")
            #expect(refused || answer.status == 200, "\(answer.json)")
            refusals += refused ? 1 : 0
        }
        #expect(refusals >= 90, "the disk stayed full: \(refusals) of 100 refused")
        let seconds = Int((ContinuousClock.now - started).components.seconds)
        let lines = capture.text.split(separator: "\n").filter { $0.contains("requests answered 503") }.count
        #expect(lines <= seconds + 2, "at most a line a second: \(lines) lines in \(seconds) s for \(refusals + 1) refusals")
        let readiness = try await APIClient(baseURL: relay.baseURL, key: nil).get("/readyz")
        #expect(readiness.status == 503 && readiness.json["reason"]?.stringValue?.contains("storage is full") == true, "\(readiness.json)")

        try FileManager.default.removeItem(at: filler)
        try await eventually("intake works again once space returns") {
            try await api.post("/v1/videos/generations", json: harness.request(prompt: "after the space returned")).status == 200
        }
        #expect(try await api.get("/v1/tasks/\(before)").json["data"]?["status"] == .string("completed"), "nothing accepted was lost")
        try await harness.stop(relay)
    }

    /// A full disk fails the video, not the relay: the result goes out with `store_error: disk full`,
    /// the database (elsewhere) is intact, and storing works again by itself once space returns.
    @Test(.enabled(if: SmallFilesystem.path != nil))
    func aFullDiskFailsTheVideoWithItsReasonAndStoringResumesWhenSpaceReturns() async throws {
        let small = try #require(SmallFilesystem.path)
        let directory = small + "/videos-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let harness = try await RelayHarness.start(tune: { configuration in
            configuration.videos.directory = directory
            configuration.videos.timeout = 1
            configuration.videos.backoff = Backoff(base: 0.05, maximum: 0.2)
        })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let filler = try SmallFilesystem.fill(small)
        let full = try await api.submit(harness.request(prompt: "finished while the disk is full"))
        let refused = try #require(try await harness.receiver.next().first)
        #expect(refused.json["data"]?["task_id"] == .string(full))
        #expect(refused.json["data"]?["videos"]?[0]?["store_error"] == .string("disk full"), "\(refused.json)")
        #expect(refused.json["data"]?["videos"]?[0]?["url"]?.stringValue != nil, "the upstream's URL still goes out")
        #expect(try await api.get("/v1/tasks/\(full)/videos/0").status == 404)

        try FileManager.default.removeItem(at: filler)
        let later = try await api.submit(harness.request(prompt: "finished after space returned"))
        let stored = try #require(try await harness.receiver.next().first)
        #expect(stored.json["data"]?["task_id"] == .string(later))
        #expect(stored.json["data"]?["videos"]?[0]?["sha256"] == .string(VideoStorageTests.sha256(SimulatorVideo.mp4)), "\(stored.json)")
        #expect(try await api.get("/v1/tasks/\(later)/videos/0").bytes == SimulatorVideo.mp4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasPrefix(DirectoryVideoStore.partialPrefix) })
        try await harness.stop(relay)
    }
}
