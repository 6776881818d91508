import Foundation
import Hummingbird
import Synchronization
import VeoRelay

/// A stand-in for the xcompute gateway: the same two endpoints, envelopes, auth check and status
/// progression (`pending → processing → completed|failed`), with time compressed by `timeScale`.
/// It counts submissions per distinct request body so tests can prove nothing was paid for twice.
public final class UpstreamSimulator: Sendable {
    /// A job is described whole by its id (`Job(id:)`), so jobs outlive the simulator's memory: the
    /// relay's built-in simulator dies with the relay, and the restarted relay must still find the
    /// jobs it was following, as it would at the real upstream.
    struct Job {
        var createdAt: Date
        var duration: TimeInterval
        var estimate: TimeInterval
        var fails: Bool
        /// When a poll first found it finished.
        var finishSeenAt: Date?
        /// The key that created (and paid for) it; nil for a job known only from its id.
        var owner: String?

        init(createdAt: Date, duration: TimeInterval, estimate: TimeInterval, fails: Bool) {
            (self.createdAt, self.duration, self.estimate, self.fails) = (createdAt, duration, estimate, fails)
        }

        /// `task_<created>-<duration>-<estimate>-<0|1>-<random>`: milliseconds in hexadecimal, then
        /// whether it fails, then what keeps two ids apart.
        var newID: String {
            let fields = [createdAt.timeIntervalSince1970, duration, estimate].map { String(UInt64(max(0, $0 * 1000)), radix: 16) }
            return "task_" + (fields + [fails ? "1" : "0", Identifier.randomHex(bytes: 6)]).joined(separator: "-")
        }

        init?(id: String) {
            guard id.hasPrefix("task_") else { return nil }
            let fields = id.dropFirst(5).split(separator: "-")
            guard fields.count == 5, let created = UInt64(fields[0], radix: 16), let duration = UInt64(fields[1], radix: 16),
                  let estimate = UInt64(fields[2], radix: 16), ["0", "1"].contains(fields[3]) else { return nil }
            self.init(createdAt: Date(timeIntervalSince1970: Double(created) / 1000), duration: Double(duration) / 1000,
                      estimate: Double(estimate) / 1000, fails: fields[3] == "1")
        }
    }

    struct State {
        var jobs: [String: Job] = [:]
        var submissionsByBody: [Data: Int] = [:]
        var polls = 0
        var accountRefusals = 0
        var submissionsByKey: [String: Int] = [:]
        var concurrencyRefusals = 0
        /// Polls made with a key other than the one that created the job.
        var foreignPolls = 0
        var pollsByKey: [String: Int] = [:]
    }

    private let settings: Mutex<SimulatorConfiguration>
    private let clock: any WallClock
    private let state = Mutex(State())
    /// Held at the door while closed: submissions and polls a test wants in flight.
    public let submissions = RequestGate()
    public let polls = RequestGate()

    public init(configuration: SimulatorConfiguration, clock: any WallClock = SystemClock()) {
        self.settings = Mutex(configuration)
        self.clock = clock
    }

    public var configuration: SimulatorConfiguration { settings.withLock { $0 } }

    /// Submissions the account refused (`SimulatorConfiguration.accountRefusal`, `refusingKeys`).
    public var accountRefusals: Int { state.withLock { $0.accountRefusals } }
    /// Jobs created (paid for), by the key that paid.
    public var submissionsByKey: [String: Int] { state.withLock { $0.submissionsByKey } }
    /// Polls answered (found or not), by the key they were made with.
    public var pollsByKey: [String: Int] { state.withLock { $0.pollsByKey } }
    /// Submissions refused because their key had `maxConcurrentJobsPerKey` jobs unfinished.
    public var concurrencyRefusals: Int { state.withLock { $0.concurrencyRefusals } }
    /// Polls for a job made with another key than the one that created it (answered 404).
    public var foreignPolls: Int { state.withLock { $0.foreignPolls } }

    /// Changes behaviour while running (a test turning faults off, say).
    public func reconfigure(_ change: (inout SimulatorConfiguration) -> Void) {
        settings.withLock { change(&$0) }
    }

    // MARK: Counters for tests and benchmarks

    public var totalSubmissions: Int { state.withLock { $0.submissionsByBody.values.reduce(0, +) } }
    /// The largest number of times one request body was submitted: 1 means no double submission.
    public var maxSubmissionsOfOneRequest: Int { state.withLock { $0.submissionsByBody.values.max() ?? 0 } }
    public var totalPolls: Int { state.withLock { $0.polls } }
    /// Submissions received (each a paid job), by the request's prompt.
    public var submissionsByPrompt: [String: Int] { submissions(by: "prompt") }

    /// Submissions received, by the value of one of the request's string fields.
    public func submissions(by field: String) -> [String: Int] {
        let counts = state.withLock { $0.submissionsByBody }
        return counts.reduce(into: [:]) { byValue, entry in
            byValue[(try? JSONValue.parse(entry.key))?[field]?.stringValue ?? "?", default: 0] += entry.value
        }
    }

    /// Lets every held job finish now (see `holdJobs`); jobs created later run on the clock again.
    public func releaseJobs() {
        let now = clock.now()
        state.withLock { state in
            for id in state.jobs.keys {
                state.jobs[id]!.duration = min(state.jobs[id]!.duration, max(0, now.timeIntervalSince(state.jobs[id]!.createdAt)))
            }
        }
        reconfigure { $0.holdJobs = false }
    }

    /// When a job finished (or will), for measuring notification lag.
    public func completionTime(of id: String) -> Date? {
        state.withLock { $0.jobs[id].map { $0.createdAt.addingTimeInterval($0.duration) } }
    }

    /// When a poll first found the job finished: splits notification lag into the poll schedule's
    /// share (until then) and the relay's own (from then to the webhook).
    public func finishSeenTime(of id: String) -> Date? {
        state.withLock { $0.jobs[id]?.finishSeenAt }
    }

    private func notePoll(of id: String) {
        let now = clock.now(), held = configuration.holdJobs
        state.withLock { state in
            guard !held, let job = state.jobs[id], job.finishSeenAt == nil, now >= job.createdAt.addingTimeInterval(job.duration) else { return }
            state.jobs[id]?.finishSeenAt = now
        }
    }

    // MARK: HTTP

    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/v1/videos/generations") { request, context in
            await self.submissions.pass()
            if let refusal = self.configuration.refusal(for: Self.bearer(request)) {
                self.state.withLock { $0.accountRefusals += 1 }
                throw Self.error(refusal.status, type: "account_error", refusal.message)
            }
            let fault = self.arrive()
            try await self.refuse(fault)
            return try await self.misbehave(fault, await self.handleSubmit(request, context: context), request: request, context: context)
        }
        // For harnesses that watch the simulator from outside (scripts/chaos): how many times each
        // distinct request was submitted, which is how "never paid twice" is checked, and the paid
        // jobs per model, which the relay's usage ledger is reconciled with.
        router.get("/_simulator/submissions") { request, _ in
            try self.authorize(request)
            let counts = self.state.withLock { $0.submissionsByBody }
            return try JSONResponse.make(.ok, JSONValue.object([
                "total": .int(counts.values.reduce(0, +)), "max_per_request": .int(counts.values.max() ?? 0),
                "by_prompt": .object(self.submissionsByPrompt.mapValues { .int($0) }),
                "by_model": .object(self.submissions(by: "model").mapValues { .int($0) }),
                // Which account paid, by the key's last four characters.
                "by_key": .object(Dictionary(self.submissionsByKey.map { ("…" + $0.key.suffix(4), $0.value) }, uniquingKeysWith: +).mapValues { .int($0) })]))
        }
        // The account's standing, for harnesses outside the process: `{"refuse": "balance"|"revokedKey"|null}`,
        // with `"key"` for one key's account only.
        router.post("/_simulator/account") { request, context in
            try self.authorize(request)
            let body = try JSONValue.parse(Data(buffer: try await request.body.collect(upTo: 4_096)))
            let refusal = body["refuse"]?.stringValue.flatMap(SimulatorConfiguration.AccountRefusal.init(rawValue:))
            if let key = body["key"]?.stringValue {
                self.reconfigure { $0.refusingKeys[key] = refusal }
            } else {
                self.reconfigure { $0.accountRefusal = refusal }
            }
            return try JSONResponse.make(.ok, JSONValue.object(["refusing": refusal.map { .string($0.rawValue) } ?? .null,
                                                                "refused": .int(self.accountRefusals)]))
        }
        router.get("/_simulator/videos/:name") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "video/mp4"
            let pause = self.configuration.videoStreamDuration / 10
            guard pause > 0 else { return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: SimulatorVideo.mp4))) }
            let video = SimulatorVideo.mp4
            let part = video.count / 10 + 1
            return Response(status: .ok, headers: headers, body: .init(contentLength: video.count) { writer in
                for start in stride(from: 0, to: video.count, by: part) {
                    try await Task.sleep(for: .seconds(pause))
                    try await writer.write(ByteBuffer(bytes: video[start..<min(start + part, video.count)]))
                }
                try await writer.finish(nil)
            })
        }
        router.get("/v1/tasks/:id") { request, context in
            await self.polls.pass()
            let fault = self.arrive()
            try self.authorize(request)
            let key = Self.bearer(request)
            if let refusal = self.configuration.refusal(for: key), refusal == .revokedKey {
                throw Self.error(refusal.status, type: "account_error", refusal.message)
            }
            try await self.refuse(fault)
            let id = try context.parameters.require("id")
            let foreign = self.state.withLock { state in
                state.polls += 1
                state.pollsByKey[key, default: 0] += 1
                guard let owner = state.jobs[id]?.owner, owner != key else { return false }
                state.foreignPolls += 1
                return true
            }
            // Another account's task does not exist as far as this key can tell.
            if foreign { throw Self.error(.notFound, type: "not_found_error", "Task \(id) not found") }
            self.notePoll(of: id)
            // The simulator's own address as the relay reached it (it may be mounted under a prefix).
            let mount = String(request.uri.path.dropLast("/v1/tasks/\(id)".count))
            let videos = "http://\(request.head.authority ?? "127.0.0.1")\(mount)/_simulator/videos/"
            guard let view = self.view(of: id, videoURL: self.configuration.videoURL ?? { videos + $0 + ".mp4" }) else {
                throw Self.error(.notFound, type: "not_found_error", "Task \(id) not found")
            }
            return try await self.misbehave(fault, JSONResponse.make(.ok, self.enveloped(view)), request: request, context: context)
        }
    }

    /// Draws the request's fault.
    private func arrive() -> SimulatorConfiguration.Fault? {
        configuration.faults.draw()
    }

    /// Faults that refuse the request before any work is done (or delay it).
    private func refuse(_ fault: SimulatorConfiguration.Fault?) async throws {
        switch fault {
        case .tooManyRequests?:
            var error = Self.error(.tooManyRequests, type: "rate_limit_error", "Rate limit exceeded")
            error.headers[.retryAfter] = "1"
            throw error
        case .internalError?: throw Self.error(.internalServerError, type: "api_error", "Internal error (simulated)")
        case .unavailable?: throw Self.error(.serviceUnavailable, type: "api_error", "Service unavailable (simulated)")
        default: break
        }
    }

    /// Faults that spoil or delay the answer after the work was done.
    private func misbehave(_ fault: SimulatorConfiguration.Fault?, _ response: Response, request: Request,
                           context: some RequestContext) async throws -> Response {
        switch fault {
        case .slow?:
            try await Task.sleep(for: .seconds(configuration.slowResponseDelay))
            return response
        case .malformed?:
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"code\": 200, \"data\": ")))
        case .dropped?:
            // The head goes out, then the connection dies before the body.
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { _ in
                throw CancellationError()
            })
        case .badGateway?:
            return try Self.error(.badGateway, type: "api_error", "Bad gateway (simulated, after the work was done)").response(
                from: request, context: context)
        case .gatewayTimeout?:
            return try Self.error(.gatewayTimeout, type: "api_error", "Gateway timeout (simulated, after the work was done)").response(
                from: request, context: context)
        case .tooManyRequests?, .internalError?, .unavailable?, nil:
            return response
        }
    }

    private func handleSubmit(_ request: Request, context: some RequestContext) async throws -> Response {
        try authorize(request)
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        let generation: GenerationRequest
        do {
            generation = try RequestValidator().validateGeneration(JSONValue.parse(Data(buffer: body)))
        } catch let failure as ValidationFailure {
            throw Self.error(.badRequest, type: "invalid_request_error", failure.message)
        } catch {
            throw Self.error(.badRequest, type: "invalid_request_error", "Invalid JSON body")
        }
        let dialect = configuration.dialect
        if dialect.rejectionInBody {
            return try JSONResponse.make(.ok, JSONValue.object(["code": .int(400), "error": .object([
                "message": .string("The request was refused (simulated, in an HTTP 200 body)"), "type": .string("invalid_request_error")])]))
        }
        let range = configuration.durations[generation.model] ?? 60...180
        let duration = Double.random(in: range) * configuration.timeScale
        let now = clock.now()
        var job = Job(createdAt: now, duration: duration, estimate: duration * Double.random(in: configuration.estimateAccuracy),
                      fails: generation.prompt.contains(SimulatorConfiguration.failureMarker)
                          || Double.random(in: 0..<1) < configuration.failureRate)
        let key = Self.bearer(request)
        job.owner = key
        let id = dialect.numericIDs ? String(state.withLock { $0.jobs.count } + 1_000_001) : job.newID
        let canonicalBody = (try? JSONCoding.encode(generation)) ?? Data(buffer: body)
        let (maximum, held) = (configuration.maxConcurrentJobsPerKey, configuration.holdJobs)
        let created = state.withLock { state in
            if let maximum, state.jobs.values.count(where: { $0.owner == key && (held || now < $0.createdAt.addingTimeInterval($0.duration)) }) >= maximum {
                state.concurrencyRefusals += 1
                return false
            }
            state.jobs[id] = job
            state.submissionsByBody[canonicalBody, default: 0] += 1
            state.submissionsByKey[key, default: 0] += 1
            return true
        }
        guard created else { throw Self.error(.tooManyRequests, type: "rate_limit_error", "Too many concurrent tasks for this key (simulated)") }
        let taskID: JSONValue = dialect.numericIDs ? .int(Int(id)!) : .string(id)
        let entry: JSONValue = .object(["status": .string("submitted"), "task_id": taskID])
        return try JSONResponse.make(.ok, dialect.bare ? entry : enveloped(.array([entry])))
    }

    /// The documented `{"code": 200, "data": …}`, or the bare value in the `bare` dialect.
    private func enveloped(_ data: JSONValue) -> JSONValue {
        configuration.dialect.bare ? data : .object(["code": .int(200), "data": data])
    }

    /// The request's bearer key ("" without one).
    private static func bearer(_ request: Request) -> String {
        let header = request.headers[.authorization] ?? ""
        return header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : ""
    }

    private func authorize(_ request: Request) throws {
        let key = Self.bearer(request)
        guard !key.isEmpty, configuration.apiKey.map({ $0 == key }) ?? true else {
            throw Self.error(.unauthorized, type: "authentication_error", "Invalid API key")
        }
    }

    /// The task as the upstream reports it at this moment.
    func view(of id: String, videoURL: (String) -> String) -> JSONValue? {
        guard let job = state.withLock({ $0.jobs[id] }) ?? Job(id: id) else { return nil }
        let dialect = configuration.dialect
        func status(_ documented: String) -> JSONValue {
            if dialect.unreadableStatus { return .string("mystery-\(documented)") }
            guard dialect.otherStatusWords else { return .string(documented) }
            let other = ["pending": "queued", "processing": "in_progress", "completed": "succeeded", "cancelled": "canceled"]
            return .string(other[documented] ?? documented)
        }
        let elapsed = clock.now().timeIntervalSince(job.createdAt)
        let created = Int(job.createdAt.timeIntervalSince1970)
        var data: [String: JSONValue] = [
            "id": dialect.numericIDs ? .int(Int(id) ?? 0) : .string(id), "created": .int(created),
            // Reported in the same (scaled) seconds the relay experiences.
            "estimated_time": seconds(job.estimate),
        ]
        let held = configuration.holdJobs
        if elapsed < job.duration * 0.1 && !held {
            data["status"] = status("pending")
            data["progress"] = .int(0)
        } else if elapsed < job.duration || held {
            data["status"] = status("processing")
            data["progress"] = .int(min(99, max(1, Int(min(1, elapsed / job.duration) * 100))))
        } else if job.fails {
            data["status"] = status("failed")
            data["progress"] = .int(0)
            data["error"] = dialect.plainStrings
                ? .string(SimulatorConfiguration.failureMessage)
                : .object(["code": .string("generation_failed"), "message": .string(SimulatorConfiguration.failureMessage)])
        } else {
            let completed = Int(job.createdAt.addingTimeInterval(job.duration).timeIntervalSince1970)
            data["status"] = status("completed")
            data["progress"] = .int(100)
            data["completed"] = .int(completed)
            data["actual_time"] = seconds(job.duration)
            data["result"] = .object(["videos": .array([.object([
                "url": dialect.plainStrings ? .string(videoURL(id)) : .array([.string(videoURL(id))]),
                "expires_at": .int(completed + 86_400),
            ])])])
        }
        return .object(data)
    }

    /// Whole seconds as an integer, as the upstream sends; when time is compressed, whole seconds of
    /// the uncompressed job (so that the relay sees the precision it would see in real time).
    private func seconds(_ value: TimeInterval) -> JSONValue {
        let unit = min(1, configuration.timeScale)
        return unit == 1 ? .int(Int(value.rounded())) : .double((value / unit).rounded() * unit)
    }

    private static func error(_ status: HTTPResponse.Status, type: String, _ message: String) -> APIError {
        APIError(status, type: type, message: message)
    }
}

extension UpstreamSimulator: UpstreamStandIn {
    /// The relay's built-in upstream: a simulator with default behaviour on compressed time.
    public static let standIn: MakeUpstreamStandIn = { apiKey, timeScale, clock in
        UpstreamSimulator(configuration: SimulatorConfiguration(apiKey: apiKey, timeScale: timeScale), clock: clock)
    }

    public func serve(under group: RouterGroup<RelayRequestContext>) {
        addRoutes(to: group)
    }
}
