import Foundation
import Hummingbird
import Synchronization

/// How the simulated upstream behaves.
public struct SimulatorConfiguration: Sendable {
    /// The bearer key it accepts; nil accepts any non-empty key.
    public var apiKey: String?
    /// Multiplies every job duration and reported time: 0.01 makes a 90 s job take 0.9 s.
    public var timeScale: Double = 1
    /// Job durations in unscaled seconds, drawn uniformly per model (Veo's typical times).
    public var durations: [GenerationRequest.Model: ClosedRange<Double>] = [.fast: 60...180, .quality: 120...360]
    /// Share of jobs that end `failed`.
    public var failureRate: Double = 0
    /// Misbehaviour per request, by kind.
    public var faults = FaultRates()
    /// How long a "slow" response is held back (real seconds).
    public var slowResponseDelay: TimeInterval = 0.5
    /// The reported `estimated_time` is the true duration times a factor drawn from this range:
    /// `1...1` is honest.
    public var estimateAccuracy: ClosedRange<Double> = 1...1

    public init(apiKey: String? = nil, timeScale: Double = 1) {
        self.apiKey = apiKey
        self.timeScale = timeScale
    }

    /// Probabilities of each kind of misbehaviour for one request. Rejections (429, 500, 503) happen
    /// before a submission is processed, like a real gateway refusing work; a malformed or dropped
    /// answer comes after the job was created, so the client cannot know it was accepted.
    public struct FaultRates: Sendable, Equatable {
        public var tooManyRequests = 0.0
        public var internalError = 0.0
        public var unavailable = 0.0
        public var slow = 0.0
        public var malformed = 0.0
        public var dropped = 0.0

        public init() {}

        /// `total` spread evenly over every kind.
        public static func spread(_ total: Double) -> FaultRates {
            var rates = FaultRates()
            let each = total / 6
            (rates.tooManyRequests, rates.internalError, rates.unavailable, rates.slow, rates.malformed, rates.dropped) =
                (each, each, each, each, each, each)
            return rates
        }

        func draw() -> Fault? {
            var roll = Double.random(in: 0..<1)
            for (fault, rate) in [(Fault.tooManyRequests, tooManyRequests), (.internalError, internalError), (.unavailable, unavailable),
                                  (.slow, slow), (.malformed, malformed), (.dropped, dropped)] {
                if roll < rate { return fault }
                roll -= rate
            }
            return nil
        }
    }

    enum Fault {
        case tooManyRequests, internalError, unavailable, slow, malformed, dropped
    }

    /// A prompt containing this marker always fails, so demos and tests can ask for a failure.
    public static let failureMarker = "[simulate:fail]"
    public static let failureMessage = "The generation was blocked by the content safety filter (simulated)."
}

/// A stand-in for the xcompute gateway: the same two endpoints, envelopes, auth check and status
/// progression (`pending → processing → completed|failed`), with time compressed by `timeScale`.
/// It counts submissions per distinct request body so tests can prove nothing was paid for twice.
public final class UpstreamSimulator: Sendable {
    struct Job {
        var request: GenerationRequest
        var createdAt: Date
        var duration: TimeInterval
        var estimate: TimeInterval
        var fails: Bool
    }

    struct State {
        var jobs: [String: Job] = [:]
        var submissionsByBody: [Data: Int] = [:]
        var polls = 0
        var requestTimes: [Date] = []
    }

    private let settings: Mutex<SimulatorConfiguration>
    private let clock: any WallClock
    private let state = Mutex(State())

    public init(configuration: SimulatorConfiguration, clock: any WallClock = SystemClock()) {
        self.settings = Mutex(configuration)
        self.clock = clock
    }

    public var configuration: SimulatorConfiguration { settings.withLock { $0 } }

    /// Changes behaviour while running (a test turning faults off, say).
    public func reconfigure(_ change: (inout SimulatorConfiguration) -> Void) {
        settings.withLock { change(&$0) }
    }

    // MARK: Counters for tests and benchmarks

    public var totalSubmissions: Int { state.withLock { $0.submissionsByBody.values.reduce(0, +) } }
    /// The largest number of times one request body was submitted: 1 means no double submission.
    public var maxSubmissionsOfOneRequest: Int { state.withLock { $0.submissionsByBody.values.max() ?? 0 } }
    public var totalPolls: Int { state.withLock { $0.polls } }

    /// The most requests (of any kind, faulty ones included) received within any `window` seconds.
    public func maxRequests(inAnyWindowOf window: TimeInterval) -> Int {
        let times = state.withLock { $0.requestTimes }.sorted()
        var start = 0
        var most = 0
        for end in times.indices {
            while times[end].timeIntervalSince(times[start]) >= window { start += 1 }
            most = max(most, end - start + 1)
        }
        return most
    }

    /// When a job finished (or will), for measuring notification lag.
    public func completionTime(of id: String) -> Date? {
        state.withLock { $0.jobs[id].map { $0.createdAt.addingTimeInterval($0.duration) } }
    }

    // MARK: HTTP

    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/v1/videos/generations") { request, context in
            let fault = self.arrive()
            try await self.refuse(fault)
            return try await self.misbehave(fault, await self.handleSubmit(request, context: context))
        }
        router.get("/v1/tasks/:id") { request, context in
            let fault = self.arrive()
            try self.authorize(request)
            try await self.refuse(fault)
            let id = try context.parameters.require("id")
            self.state.withLock { $0.polls += 1 }
            guard let view = self.view(of: id) else {
                throw Self.error(.notFound, type: "not_found_error", "Task \(id) not found")
            }
            return try await self.misbehave(fault, JSONResponse.make(.ok, ["code": .int(200), "data": view] as [String: JSONValue]))
        }
    }

    /// Logs the request and draws its fault.
    private func arrive() -> SimulatorConfiguration.Fault? {
        let now = clock.now()
        state.withLock { $0.requestTimes.append(now) }
        return configuration.faults.draw()
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
    private func misbehave(_ fault: SimulatorConfiguration.Fault?, _ response: Response) async throws -> Response {
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
        default:
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
        let id = Identifier.task()
        let range = configuration.durations[generation.model] ?? 60...180
        let duration = Double.random(in: range) * configuration.timeScale
        let job = Job(request: generation, createdAt: clock.now(), duration: duration,
                      estimate: duration * Double.random(in: configuration.estimateAccuracy),
                      fails: generation.prompt.contains(SimulatorConfiguration.failureMarker)
                          || Double.random(in: 0..<1) < configuration.failureRate)
        let canonicalBody = (try? JSONCoding.encode(generation)) ?? Data(buffer: body)
        state.withLock { state in
            state.jobs[id] = job
            state.submissionsByBody[canonicalBody, default: 0] += 1
        }
        let entry: JSONValue = .object(["status": .string("submitted"), "task_id": .string(id)])
        return try JSONResponse.make(.ok, ["code": .int(200), "data": .array([entry])] as [String: JSONValue])
    }

    private func authorize(_ request: Request) throws {
        let header = request.headers[.authorization] ?? ""
        let key = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : ""
        guard !key.isEmpty, configuration.apiKey.map({ $0 == key }) ?? true else {
            throw Self.error(.unauthorized, type: "authentication_error", "Invalid API key")
        }
    }

    /// The task as the upstream reports it at this moment.
    func view(of id: String) -> JSONValue? {
        guard let job = state.withLock({ $0.jobs[id] }) else { return nil }
        let elapsed = clock.now().timeIntervalSince(job.createdAt)
        let created = Int(job.createdAt.timeIntervalSince1970)
        var data: [String: JSONValue] = [
            "id": .string(id), "created": .int(created),
            // Reported in the same (scaled) seconds the relay experiences.
            "estimated_time": Self.seconds(job.estimate),
        ]
        if elapsed < job.duration * 0.1 {
            data["status"] = .string("pending")
            data["progress"] = .int(0)
        } else if elapsed < job.duration {
            data["status"] = .string("processing")
            data["progress"] = .int(min(99, max(1, Int(elapsed / job.duration * 100))))
        } else if job.fails {
            data["status"] = .string("failed")
            data["progress"] = .int(0)
            data["error"] = .object(["code": .string("generation_failed"), "message": .string(SimulatorConfiguration.failureMessage)])
        } else {
            let completed = Int(job.createdAt.addingTimeInterval(job.duration).timeIntervalSince1970)
            data["status"] = .string("completed")
            data["progress"] = .int(100)
            data["completed"] = .int(completed)
            data["actual_time"] = Self.seconds(job.duration)
            data["result"] = .object(["videos": .array([.object([
                "url": .array([.string("https://videos.simulator.invalid/\(id).mp4")]),
                "expires_at": .int(completed + 86_400),
            ])])])
        }
        return .object(data)
    }

    /// Whole seconds as an integer, as the upstream sends; fractions only when time is compressed.
    private static func seconds(_ value: TimeInterval) -> JSONValue {
        value >= 10 ? .int(Int(value.rounded())) : .double((value * 1000).rounded() / 1000)
    }

    private static func error(_ status: HTTPResponse.Status, type: String, _ message: String) -> APIError {
        APIError(status, type: type, message: message)
    }
}
