import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Synchronization
import VeoRelay
import VeoRelayDevTools

/// Accepted → webhook received for jobs that take ~0 s (simulated), through every stage: intake,
/// submission, polls, delivery. With several relays on one PostgreSQL database it is the scale-out
/// measurement: the same tasks, spread over the instances, and whether any row was worked twice (a
/// request submitted twice, or a webhook sent again after it was accepted).
struct PipelineScenario {
    var tasks: Int

    /// The SQLite pipeline (one relay).
    func runEmbedded() async throws -> [BenchmarkRow] {
        let directory = NSTemporaryDirectory()
        let database = "\(directory)/veo-relay-bench-pipeline-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) } }
        let result = try await measure(instances: 1, database: database)
        return [row(result, store: "SQLite", baseline: "—", ratio: "—")]
    }

    /// 1, 2 and 3 relays sharing the PostgreSQL database at `url` (which it fills).
    func runScaleOut(url: String) async throws -> [BenchmarkRow] {
        var results: [Result] = []
        for instances in 1...3 { results.append(try await measure(instances: instances, database: url)) }
        let single = results[0]
        return results.map { result in
            row(result, store: "PostgreSQL, \(result.instances) relay\(result.instances == 1 ? "" : "s")",
                baseline: "1 relay: \(format(single.rate, digits: 0)) tasks/s", ratio: format(result.rate / single.rate))
        }
    }

    struct Result {
        var instances: Int
        var rate: Double
        var seconds: Double
        var paidTwice: Int
        var duplicateWebhooks: Int
        /// Mean lateness of each stage's oldest due work while the run lasted.
        var lateness: [(stage: String, seconds: Double)]
    }

    func row(_ result: Result, store: String, baseline: String, ratio: String) -> BenchmarkRow {
        let limiting = result.lateness.max { $0.seconds < $1.seconds }
        let stages = result.lateness.map { "\($0.stage) \(format($0.seconds))" }.joined(separator: ", ")
        return BenchmarkRow(
            scenario: result.instances == 1 && store == "SQLite" ? "pipeline" : "scale-out",
            measure: "\(store): \(tasks) tasks accepted → webhook, tasks/s (mean lateness s: \(stages); limiting: \(limiting?.stage ?? "—"))",
            relay: "\(format(result.rate, digits: 0)) tasks/s; worked twice: \(result.paidTwice + result.duplicateWebhooks)",
            baseline: baseline, ratio: ratio, target: store == "SQLite" ? "report" : "no collapse; 0 worked twice")
    }

    func measure(instances: Int, database: String) async throws -> Result {
        let simulator = UpstreamSimulator(configuration: SimulatorConfiguration(apiKey: "bench-upstream", timeScale: 0.000_01))
        let received = Shared((ids: Set<String>(), duplicates: 0))
        let secret = WebhookSecret.generate()
        let sink = try WebhookSink(secret: secret, captureFile: nil) { delivery in
            received.value.withLock { state in
                if !state.ids.insert(delivery.id).inserted { state.duplicates += 1 }
            }
        }
        let support = try await UpstreamAndSink(simulator: simulator, sink: sink)
        let (upstreamURL, callback) = (support.upstreamURL, support.callbackURL)

        var relays: [(port: Int, running: Background, relay: Relay)] = []
        for instance in 0..<instances {
            var relay = BenchmarkRelay(directory: NSTemporaryDirectory(), secret: secret, upstreamURL: upstreamURL)
            relay.configuration.databasePath = database
            relay.configuration.instanceID = "bench-\(instance)"
            relay.configuration.engine = Self.fastUpstreamEngine(relay.configuration.engine)
            relays.append(try await relay.start())
        }
        let store = try await StoreLocation.open(database, logger: .init(label: "bench"))
        let sampler = LatenessSampler(store: store)

        let started = ContinuousClock.now
        let relayPorts = relays.map(\.port)
        let intake = try await LoadGenerator(connections: 32).run(count: tasks) { index in
            // Each body differs, so the simulator can tell a request submitted twice.
            let body = ByteBuffer(string: #"{"model":"veo3.1-fast-official","prompt":"pipeline \#(index)","callback_url":"\#(callback)"}"#)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(relayPorts[index % relayPorts.count])/v1/videos/generations")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            return request
        }
        guard intake.completed == tasks else { throw BenchmarkFailure("intake accepted \(intake.completed) of \(tasks)") }
        try await waitUntil("all \(tasks) webhooks", within: .seconds(600)) { received.value.withLock { $0.ids.count } >= tasks }
        let seconds = (ContinuousClock.now - started).seconds
        let lateness = await sampler.stop()
        // Let anything sent twice arrive before counting.
        try await Task.sleep(for: .milliseconds(500))
        for relay in relays { try await relay.running.stop() }
        store.close()
        try await support.stop()
        let means = lateness.map { (stage: $0.stage, seconds: $0.mean) }.sorted { $0.stage < $1.stage }
        return Result(instances: instances, rate: Double(tasks) / seconds, seconds: seconds,
                      paidTwice: simulator.totalSubmissions - tasks,
                      duplicateWebhooks: received.value.withLock { $0.duplicates }, lateness: means)
    }

    /// The relay tuned, as an operator would, for an upstream whose jobs take milliseconds and whose
    /// budget is not the limit: polls may come 10 ms apart, and the first poll is expected at once.
    static func fastUpstreamEngine(_ engine: EngineConfiguration) -> EngineConfiguration {
        var engine = engine
        engine.polling.floor = 0.01
        engine.polling.ceiling = 0.5
        engine.polling.defaultEstimates = engine.polling.defaultEstimates.mapValues { _ in 0.01 }
        engine.idleInterval = .milliseconds(20)
        engine.upstream.rate = 100_000
        engine.upstream.burst = 100_000
        engine.destinations.maxConcurrent = 32
        return engine
    }
}
