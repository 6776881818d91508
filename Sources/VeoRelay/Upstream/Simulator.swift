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

    public init(apiKey: String? = nil, timeScale: Double = 1) {
        self.apiKey = apiKey
        self.timeScale = timeScale
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
        var fails: Bool
    }

    struct State {
        var jobs: [String: Job] = [:]
        var submissionsByBody: [Data: Int] = [:]
        var polls = 0
    }

    public let configuration: SimulatorConfiguration
    private let clock: any WallClock
    private let state = Mutex(State())

    public init(configuration: SimulatorConfiguration, clock: any WallClock = SystemClock()) {
        self.configuration = configuration
        self.clock = clock
    }

    // MARK: Counters for tests and benchmarks

    public var totalSubmissions: Int { state.withLock { $0.submissionsByBody.values.reduce(0, +) } }
    /// The largest number of times one request body was submitted: 1 means no double submission.
    public var maxSubmissionsOfOneRequest: Int { state.withLock { $0.submissionsByBody.values.max() ?? 0 } }
    public var totalPolls: Int { state.withLock { $0.polls } }

    // MARK: HTTP

    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("/v1/videos/generations") { request, context in
            try await self.handleSubmit(request, context: context)
        }
        router.get("/v1/tasks/:id") { request, context in
            try self.authorize(request)
            let id = try context.parameters.require("id")
            self.state.withLock { $0.polls += 1 }
            guard let view = self.view(of: id) else {
                throw Self.error(.notFound, type: "not_found_error", "Task \(id) not found")
            }
            return try JSONResponse.make(.ok, ["code": .int(200), "data": view] as [String: JSONValue])
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
        let job = Job(request: generation, createdAt: clock.now(),
                      duration: Double.random(in: range) * configuration.timeScale,
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
            "estimated_time": Self.seconds(job.duration),
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
