import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Synchronization
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// `--store-videos`: every finished video copied before the result is announced, served with Range
/// and ETag to the task's own client or watch token, and every failure announced with a reason.
@Suite("Stored videos", .stopsWhatItStarts)
struct VideoStorageTests {
    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-videos-\(UUID().uuidString)").path
    }

    /// A webhook's `stored_url` downloads byte-identical to the simulator's file with the API key and
    /// with the watch token; a range comes back as 206 with exactly those bytes; the ETag answers 304;
    /// another client's key finds nothing; after the retention period the route answers 410.
    @Test func aStoredVideoIsServedWholeInRangesAndOnlyToItsOwner() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let harness = try await RelayHarness.start(tune: { $0.videos.directory = directory })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        let accepted = try await api.post("/v1/videos/generations", json: harness.request())
        let taskID = try #require(accepted.taskID)
        let watchURL = try #require(accepted.watchURL)
        let token = try #require(URLComponents(string: watchURL)?.queryItems?.first { $0.name == "watch_token" }?.value)

        let event = try #require(try await harness.receiver.next().first)
        #expect(event.json["type"] == .string("task.succeeded"))
        let video = try #require(event.json["data"]?["videos"]?[0])
        let storedURL = try #require(video["stored_url"]?.stringValue)
        #expect(storedURL == "\(relay.baseURL)/v1/tasks/\(taskID)/videos/0")
        #expect(video["sha256"] == .string(Self.sha256(SimulatorVideo.mp4)))
        #expect(video["bytes"] == .int(SimulatorVideo.mp4.count))
        #expect(video["url"]?.stringValue?.contains("/_simulator/videos/") == true, "the upstream's URL stays")
        #expect(video["store_error"] == nil)

        let path = "/v1/tasks/\(taskID)/videos/0"
        let whole = try await api.get(path)
        #expect(whole.status == 200 && whole.headers["content-type"] == "video/mp4")
        #expect(whole.bytes == SimulatorVideo.mp4 && Self.sha256(whole.bytes) == video["sha256"]?.stringValue)
        #expect(whole.headers["content-length"] == String(SimulatorVideo.mp4.count))
        let part = try await api.send(.GET, path, body: nil, headers: [("Range", "bytes=100-199")])
        #expect(part.status == 206 && part.bytes == SimulatorVideo.mp4[100...199])
        #expect(part.headers["content-range"] == "bytes 100-199/\(SimulatorVideo.mp4.count)")
        let etag = try #require(whole.headers["etag"])
        #expect(try await api.send(.GET, path, body: nil, headers: [("If-None-Match", etag)]).status == 304)
        let watched = try await APIClient(baseURL: relay.baseURL, key: nil).get(path + "?watch_token=\(token)")
        #expect(watched.status == 200 && watched.bytes == SimulatorVideo.mp4, "a watch token plays it in a plain <video src>")
        #expect(try await APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey).get(path).status == 404)
        #expect(try await api.get("/v1/tasks/\(taskID)/videos/1").status == 404)
        let task = try await api.get("/v1/tasks/\(taskID)")
        #expect(task.json["data"]?["videos"]?[0]?["stored_url"] == .string(storedURL), "the task shows the copy too")
        #expect(task.json["data"]?["status"] == .string("completed"))

        let later = FixedClock(now: Date().addingTimeInterval(31 * 86_400))
        try VideoRetention(store: DirectoryVideoStore(path: directory), retention: 30 * 86_400, clock: later, logger: TestLog.logger).sweep()
        let gone = try await api.get(path)
        #expect(gone.status == 410 && gone.json["error"]?["type"] == .string("video_expired"), "\(gone.json)")
        #expect(try await api.get("/v1/tasks/\(taskID)").json["data"]?["id"] == .string(taskID), "the task keeps its record")
        try await harness.stop(relay)
    }

    /// What the video host does for one job.
    enum HostBehaviour: String, CaseIterable, Sendable {
        case missing, failsOnceThenServes, notAVideo, oversize, neverEnds
    }

    /// A video host on loopback that misbehaves per job, as the test assigns it.
    final class VideoHost: Sendable {
        let behaviours = Mutex<[String: HostBehaviour]>([:])
        let requests = Mutex<[String: Int]>([:])
        /// Holds never-ending bodies open until the test ends them, so the host can stop.
        let endless = AsyncStream<Void>.makeStream()

        func start() async throws -> RunningServer {
            let router = Router()
            router.get("/videos/:job") { _, context in
                let job = try context.parameters.require("job")
                let attempt = self.requests.withLock { requests -> Int in
                    requests[job, default: 0] += 1
                    return requests[job]!
                }
                var headers = HTTPFields()
                headers[.contentType] = "video/mp4"
                switch self.behaviours.withLock({ $0[job] }) {
                case .missing?:
                    return Response(status: .notFound)
                case .failsOnceThenServes? where attempt == 1:
                    return Response(status: .internalServerError)
                case .notAVideo?:
                    headers[.contentType] = "text/html"
                    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "<html>expired</html>")))
                case .oversize?:
                    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(repeating: 7, count: 4_096)))
                case .neverEnds?:
                    return Response(status: .ok, headers: headers, body: .init { writer in
                        try await writer.write(ByteBuffer(bytes: SimulatorVideo.mp4.prefix(100)))
                        for await _ in self.endless.stream {} // never ends while the test runs: the relay's timeout must cut it
                    })
                default:
                    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: SimulatorVideo.mp4)))
                }
            }
            return try await RunningServer.start(router: router)
        }
    }

    /// Each failure of the video host ends in the event with the upstream's URL and a `store_error`
    /// saying why (a 500 is retried and then stored); the relay stays up and leaves no partial file.
    /// The outcomes do not depend on how fast the machine is: a body that never ends fails every
    /// attempt whatever the time limit, and the others end the same way however long they take.
    @Test(arguments: [[HostBehaviour.missing, .failsOnceThenServes, .notAVideo, .oversize], [.neverEnds]])
    func everyVideoHostFailureIsAnnouncedWithItsReason(behaviours: [HostBehaviour]) async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let host = VideoHost()
        let hostServer = try await host.start()
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.holdJobs = true
        simulator.videoURL = { [base = hostServer.baseURL] job in "\(base)/videos/\(job)" }
        let endless = behaviours == [.neverEnds]
        let harness = try await RelayHarness.start(simulator: simulator, tune: { configuration in
            configuration.videos.directory = directory
            configuration.videos.maxBytes = 3_000 // the simulator's video fits, the host's oversize one does not
            // Short limits only where a body never ends; elsewhere limits no slow machine reaches.
            configuration.videos.downloadTimeout = endless ? 0.5 : 120
            configuration.videos.timeout = endless ? 1 : 600
            configuration.videos.backoff = Backoff(base: 0.05, maximum: 0.2)
        })
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        var tasks: [String: HostBehaviour] = [:]
        for behaviour in behaviours {
            tasks[try await api.submit(harness.request(prompt: "video host: \(behaviour.rawValue)"))] = behaviour
        }
        // Each job's behaviour is set once the upstream has it, before any job is let finish.
        for (taskID, behaviour) in tasks {
            let job = try await within(.seconds(20), "task \(taskID) submitted") { () async throws -> String in
                while true {
                    if let job = try await api.get("/v1/tasks/\(taskID)").json["data"]?["upstream_task_id"]?.stringValue { return job }
                    try await Task.sleep(for: .milliseconds(10)) // re-check interval, not synchronisation
                }
            }
            host.behaviours.withLock { $0[job] = behaviour }
        }
        harness.simulator.releaseJobs()
        let events = try await harness.receiver.next(tasks.count, within: .seconds(60))
        var errors: [HostBehaviour: String?] = [:]
        for event in events {
            let taskID = try #require(event.json["data"]?["task_id"]?.stringValue)
            #expect(event.json["type"] == .string("task.succeeded"), "a paid result is announced even without a copy")
            let video = try #require(event.json["data"]?["videos"]?[0])
            #expect(video["url"]?.stringValue?.hasPrefix(hostServer.baseURL) == true)
            errors[try #require(tasks[taskID])] = video["store_error"]?.stringValue
            if video["store_error"] == nil {
                #expect(video["sha256"] == .string(Self.sha256(SimulatorVideo.mp4)))
            } else {
                #expect(video["stored_url"] == nil)
            }
        }
        if endless {
            #expect(errors[.neverEnds] == "the download did not finish in time")
        } else {
            #expect(errors[.failsOnceThenServes] == .some(nil), "a 500 is retried, then the video is stored")
            #expect(errors[.missing] == "HTTP 404 from the video host")
            #expect(errors[.notAVideo] == "not a video (Content-Type: text/html)")
            #expect(errors[.oversize]??.hasPrefix("larger than the 3000-byte cap") == true)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.count == (endless ? 0 : 1) && files.allSatisfy { !$0.hasPrefix(DirectoryVideoStore.partialPrefix) }, "\(files)")
        #expect(try await api.get("/healthz").status == 200, "the relay stays up")
        try await harness.stop(relay)
        host.endless.continuation.finish()
        try await hostServer.stop()
    }

    /// With `--check-video-urls` a video on an address the callback rules refuse is never fetched: the
    /// result goes out with the reason (the literal address is refused before any connection is made).
    @Test func aVideoHostTheAddressRulesRefuseIsNeverFetched() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.videoURL = { job in "http://10.20.30.40/videos/\(job).mp4" }
        let harness = try await RelayHarness.start(simulator: simulator, tune: { configuration in
            configuration.videos.directory = directory
            configuration.videos.checkAddresses = true
        })
        let relay = try await harness.startRelay()
        _ = try await APIClient(baseURL: relay.baseURL).submit(harness.request())
        let event = try #require(try await harness.receiver.next().first)
        let error = event.json["data"]?["videos"]?[0]?["store_error"]?.stringValue
        #expect(error?.hasPrefix("refused: video url points to a private, loopback or reserved address (10.20.30.40)") == true, "\(error ?? "none")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        try await harness.stop(relay)
    }

    /// A directory the relay cannot write stops the start with a message naming the setting, and
    /// partial downloads a crash left behind are removed.
    @Test func theStartChecksTheDirectoryAndClearsPartialDownloads() async throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let notADirectory = directory + "/a-file"
        FileManager.default.createFile(atPath: notADirectory, contents: Data())
        var configuration = RelayConfiguration()
        configuration.videos.directory = notADirectory + "/videos"
        await #expect(throws: ConfigurationError.self) { try await buildRelay(configuration, logger: TestLog.logger, standIn: UpstreamSimulator.standIn) }
        do {
            _ = try await buildRelay(configuration, logger: TestLog.logger, standIn: UpstreamSimulator.standIn)
        } catch {
            #expect("\(error)".contains("--store-videos"), "\(error)")
        }

        let leftover = directory + "/" + DirectoryVideoStore.partialPrefix + "left-by-a-crash"
        FileManager.default.createFile(atPath: leftover, contents: Data(SimulatorVideo.mp4.prefix(10)))
        let kept = directory + "/" + DirectoryVideoStore.name(taskID: "task_x", index: 0)
        FileManager.default.createFile(atPath: kept, contents: SimulatorVideo.mp4)
        try DirectoryVideoStore(path: directory).prepare(logger: TestLog.logger)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(FileManager.default.contents(atPath: kept) == SimulatorVideo.mp4, "finished copies stay")
    }

    /// A URL already past its `expires_at` is not fetched: the reason says when it expired.
    @Test func anExpiredVideoURLIsNotFetched() async throws {
        let http = HTTPClient.relayClient(connectTimeout: 1)
        let downloader = VideoDownloader(http: http, policy: VideoStorePolicy(), store: DirectoryVideoStore(path: Self.temporaryDirectory()),
                                         addressGuard: nil)
        let expired = VideoLink(url: "http://127.0.0.1:9/never-called.mp4", expiresAt: 1_763_174_708)
        await #expect(throws: VideoFetchFailure.permanent(.expired, "the upstream's URL expired at 2025-11-15T02:45:08Z")) {
            _ = try await downloader.download(expired, taskID: "task_x", index: 0, now: Date(timeIntervalSince1970: 1_763_174_709))
        }
        try await http.shutdown()
    }
}

extension JSONValue {
    /// An array's element, for reading answers in tests.
    subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }
}
