import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import VeoRelay

/// Durable intake against the fastest the same framework answers the same request on this machine:
/// the relay's `POST /v1/videos/generations` (authenticated, validated, committed to SQLite on disk
/// before the answer) versus a Hummingbird handler in the same process that parses and validates the
/// same body and answers the same envelope without storing anything. An empty handler shows what
/// the load generator itself can drive, so that it is known not to be the limit. The relay runs
/// again with a budget on its client (every limit, none reached), against itself without one: the
/// check and the count share intake's transaction, so they should cost little.
struct IntakeScenario {
    var connections = 32
    var round: Duration
    var rounds = 3

    func run() async throws -> [BenchmarkRow] {
        let body = ByteBuffer(data: try JSONCoding.encode(JSONValue.object([
            "model": .string("veo3.1-fast-official"), "prompt": .string("a golden retriever running on the beach, sunset, cinematic"),
            "callback_url": .string("http://127.0.0.1:9/hook"), "metadata": .object(["chat_id": .int(42)]),
        ])))
        var relay: [LoadResult] = [], budgeted: [LoadResult] = [], baseline: [LoadResult] = []
        for _ in 0..<rounds {
            relay.append(try await measureRelay(body: body))
            budgeted.append(try await measureRelay(body: body, budget: Self.unreachedBudget))
            baseline.append(try await measure(body: body, handler: Self.validatingHandler))
        }
        let generator = try await measure(body: body) { _ in Response(status: .ok) }
        let relayRate = median(relay.map(\.rate)), baselineRate = median(baseline.map(\.rate)), budgetedRate = median(budgeted.map(\.rate))
        func latencies(_ results: [LoadResult]) -> String {
            "\(format(median(results.map { $0.latency(0.5) }) * 1_000, digits: 1)) / \(format(median(results.map { $0.latency(0.99) }) * 1_000, digits: 1))"
        }
        let failures = (relay + budgeted + baseline).map(\.failed).reduce(0, +)
        return try await underWrk(body: body) + [
            BenchmarkRow(scenario: "intake", measure: "requests/s, \(connections) connections (median of \(rounds))",
                         relay: format(relayRate, digits: 0), baseline: format(baselineRate, digits: 0),
                         ratio: format(relayRate / baselineRate), target: "≥ 0.60"),
            BenchmarkRow(scenario: "intake", measure: "p50 / p99 latency, ms", relay: latencies(relay), baseline: latencies(baseline)),
            BenchmarkRow(scenario: "intake", measure: "requests/s with a budget on the client (every limit, none reached) vs without",
                         relay: format(budgetedRate, digits: 0), baseline: format(relayRate, digits: 0),
                         ratio: format(budgetedRate / relayRate), target: "≥ 0.90"),
            BenchmarkRow(scenario: "intake", measure: "load generator alone (empty handler), requests/s; failed requests",
                         relay: "\(failures) failed", baseline: format(generator.rate, digits: 0)),
        ]
    }

    /// The relay and the validating handler under `wrk`, alternated, median of `rounds`; no rows without wrk.
    func underWrk(body: ByteBuffer) async throws -> [BenchmarkRow] {
        guard let wrk = Wrk.find(connections: connections, seconds: max(1, Int(round.seconds.rounded()))) else {
            Console.line("intake: wrk not found (apt-get install wrk): its rows are skipped")
            return []
        }
        let data = Data(buffer: body)
        let headers = [("Content-Type", "application/json"), ("Authorization", "Bearer \(BenchmarkRelay.apiKey)")]
        var relay: [Wrk.Result] = [], baseline: [Wrk.Result] = []
        for _ in 0..<rounds {
            relay.append(try await measureRelay { port in try await wrk.post("http://127.0.0.1:\(port)/v1/videos/generations", body: data, headers: headers) })
            baseline.append(try await measure(handler: Self.validatingHandler) { port in
                try await wrk.post("http://127.0.0.1:\(port)/v1/videos/generations", body: data, headers: headers)
            })
        }
        guard (relay + baseline).allSatisfy({ $0.failed == 0 }) else { throw BenchmarkFailure("intake under wrk: failed requests") }
        let relayRate = median(relay.map(\.rate)), baselineRate = median(baseline.map(\.rate))
        let relayCPU = median(relay.map(\.cpuMicrosecondsPerRequest)), baselineCPU = median(baseline.map(\.cpuMicrosecondsPerRequest))
        return [BenchmarkRow(scenario: "intake", measure: "requests/s under wrk (C load generator, \(connections) connections, median of \(rounds)), "
                                + "durable intake vs the validating in-memory handler", relay: format(relayRate, digits: 0),
                             baseline: format(baselineRate, digits: 0), ratio: format(relayRate / baselineRate), target: "≥ 0.70"),
                BenchmarkRow(scenario: "intake", measure: "CPU per request under wrk, µs (the server's process; median of \(rounds))",
                             relay: format(relayCPU, digits: 0), baseline: format(baselineCPU, digits: 0), ratio: format(baselineCPU / relayCPU))]
    }

    static let watchLinks = WatchLinks(signer: WatchTokenSigner(secret: SharedSecret.generate(), lifetime: 3_600), publicURL: nil,
                                       clock: SystemClock())

    /// Parses and validates like the relay's intake, then answers the same envelope (with its `watch_url`).
    @Sendable static func validatingHandler(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 64 * 1024)
        let validator = RequestValidator()
        _ = try validator.validate(validator.parse(Data(buffer: body)))
        let taskID = Identifier.task()
        return try GenerationsController.submitted(taskID, watchURL: watchLinks.url(taskID: taskID, clientID: "baseline", request: request))
    }

    /// Far above what a round can accept, so every request is checked and counted, none refused.
    static let unreachedBudget = ClientBudget([.perDay: 1_000_000_000, .perMonth: 1_000_000_000, .videoSecondsPerDay: 1_000_000_000,
                                               .videoSecondsPerMonth: 1_000_000_000, .inFlight: 1_000_000_000])

    func measureRelay(body: ByteBuffer, budget: ClientBudget = .unlimited) async throws -> LoadResult {
        try await measureRelay(budget: budget) { port in try await load(url: "http://127.0.0.1:\(port)/v1/videos/generations", body: body) }
    }

    /// A fresh relay on its own database, loaded by `load` (given its port).
    func measureRelay<Result>(budget: ClientBudget = .unlimited, load: (Int) async throws -> Result) async throws -> Result {
        var relay = BenchmarkRelay(directory: NSTemporaryDirectory(), secret: WebhookSecret.generate(), upstreamURL: "http://127.0.0.1:9")
        relay.withoutUpstreamTraffic()
        relay.configuration.defaultBudget = budget
        defer { relay.removeDatabase() }
        let (port, running, _) = try await relay.start()
        let result = try await load(port)
        try await running.stop()
        return result
    }

    func measure(body: ByteBuffer, handler: @escaping @Sendable (Request) async throws -> Response) async throws -> LoadResult {
        try await measure(handler: handler) { port in try await load(url: "http://127.0.0.1:\(port)/v1/videos/generations", body: body) }
    }

    /// `handler` alone behind Hummingbird, loaded by `load` (given its port).
    func measure<Result>(handler: @escaping @Sendable (Request) async throws -> Response, load: (Int) async throws -> Result) async throws -> Result {
        let router = Router()
        router.post("/v1/videos/generations") { request, _ in try await handler(request) }
        let ports = PortBook()
        let running = Background([loopbackServer(router, name: "baseline", ports: ports)])
        let result = try await load(try await ports.wait("baseline"))
        try await running.stop()
        return result
    }

    func load(url: String, body: ByteBuffer) async throws -> LoadResult {
        try await LoadGenerator(connections: connections).run(duration: round) { _ in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            return request
        }
    }
}
