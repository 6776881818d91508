import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import VeoRelay
import VeoRelayDevTools

/// Notification lag and upstream polls per task, for the adaptive schedule against fixed intervals,
/// all measured in one run on loopback: simulator + relay + webhook sink, with time compressed by
/// `timeScale` and every relay timing scaled by the same factor, so results read in real seconds.
struct LagScenario {
    var tasks: Int
    var timeScale: Double

    func run() async throws -> [BenchmarkRow] {
        let schedules: [(String, PollPolicy.Mode, ClosedRange<Double>)] = [
            ("adaptive, honest estimated_time", .adaptive, 1...1),
            ("adaptive, estimated_time off by up to ±50 %", .adaptive, 0.5...1.5),
            ("fixed 5 s", .fixed(5), 1...1),
            ("fixed 30 s", .fixed(30), 1...1),
        ]
        var results: [BenchmarkResult] = []
        for (name, mode, accuracy) in schedules {
            results.append(try await measure(name: name, mode: mode, estimateAccuracy: accuracy))
        }
        let baseline = results.first { $0.name == "fixed 5 s" }!
        func summary(_ result: BenchmarkResult) -> String {
            "p99 \(format(result.lag(0.99))) s, \(format(result.pollsPerTask)) polls/task"
        }
        return results.filter { $0.name != baseline.name }.map { result in
            BenchmarkRow(scenario: "lag", measure: "\(result.name): completion → webhook (\(tasks) tasks, p50 \(format(result.lag(0.5))) s; "
                            + "the relay's share, poll → webhook: p99 \(format(quantile(result.relayShares, 0.99) * 1_000, digits: 0)) ms)",
                         relay: summary(result), baseline: "fixed 5 s: " + summary(baseline),
                         ratio: "\(format(baseline.pollsPerTask / result.pollsPerTask))× fewer polls",
                         target: result.name.hasPrefix("adaptive") ? "p99 ≤ 1.5 s, ≤ 5 polls/task" : "—")
        }
    }

    func measure(name: String, mode: PollPolicy.Mode, estimateAccuracy: ClosedRange<Double>) async throws -> BenchmarkResult {
        let scale = timeScale
        var simulatorConfiguration = SimulatorConfiguration(apiKey: "bench-upstream", timeScale: scale)
        simulatorConfiguration.estimateAccuracy = estimateAccuracy
        let simulator = UpstreamSimulator(configuration: simulatorConfiguration)
        let arrivals = Mutex<[String: Date]>([:])
        let secret = WebhookSecret.generate()
        let sink = try WebhookSink(secret: secret, captureFile: nil) { delivery in
            let now = Date()
            guard let upstreamID = (try? JSONValue.parse(delivery.body))?["data"]?["upstream_task_id"]?.stringValue else { return }
            arrivals.withLock { $0[upstreamID] = $0[upstreamID] ?? now }
        }

        let support = try await UpstreamAndSink(simulator: simulator, sink: sink)

        // In memory when the machine has it: the schedules are compared, not the disk.
        let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        var relay = BenchmarkRelay(directory: directory, secret: secret, upstreamURL: support.upstreamURL)
        defer { relay.removeDatabase() }
        var engine = relay.configuration.engine
        engine.polling.mode = switch mode {
        case .adaptive: .adaptive
        case .fixed(let interval): .fixed(interval * scale)
        }
        engine.polling.floor *= scale
        engine.polling.ceiling *= scale
        engine.polling.defaultEstimates = engine.polling.defaultEstimates.mapValues { $0 * scale }
        engine.idleInterval = .milliseconds(Int(1_000 * scale))
        engine.deadlines.minimum *= scale
        engine.deadlines.maximum *= scale
        engine.upstreamBackoff = Backoff(base: engine.upstreamBackoff.base * scale, maximum: engine.upstreamBackoff.maximum * scale)
        // The schedules are compared, not the allowance: give every schedule all the upstream it asks for.
        engine.upstream.rate = 10_000
        engine.upstream.burst = 10_000
        engine.pollConcurrency = 64
        engine.submitConcurrency = 16
        relay.configuration.engine = engine
        let (relayPort, running, _) = try await relay.start()

        for index in 0..<tasks {
            let model = index.isMultiple(of: 2) ? "veo3.1-fast-official" : "veo3.1-quality-official"
            let body: JSONValue = .object(["model": .string(model), "prompt": .string("benchmark \(index)"),
                                           "callback_url": .string(support.callbackURL)])
            let (status, answer) = try await RelayHTTP(base: "http://127.0.0.1:\(relayPort)", key: BenchmarkRelay.apiKey)
                .send(.POST, "/v1/videos/generations", body: try JSONCoding.encode(body))
            guard status == 200 else { throw BenchmarkFailure("the relay refused a benchmark task: \(status) \(answer)") }
        }
        let limit = Date().addingTimeInterval(400 * scale * 3 + 30)
        while arrivals.withLock({ $0.count }) < tasks, Date() < limit {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await running.stop()
        try await support.stop()

        // Only the schedule's share (completion → the poll that found it) ran on compressed time; the
        // relay's own share (that poll → the webhook: save, claim, sign, POST) took real time and is
        // counted as it is, not multiplied by the compression.
        let shares = arrivals.withLock { $0 }.compactMap { id, arrival -> (schedule: Double, relay: Double)? in
            guard let completed = simulator.completionTime(of: id), let seen = simulator.finishSeenTime(of: id) else { return nil }
            return (seen.timeIntervalSince(completed) / scale, arrival.timeIntervalSince(seen))
        }
        guard shares.count == tasks else { throw BenchmarkFailure("\(name): only \(shares.count) of \(tasks) webhooks arrived") }
        return BenchmarkResult(name: name, lags: shares.map { $0.schedule + $0.relay }.sorted(), relayShares: shares.map(\.relay).sorted(),
                               pollsPerTask: Double(simulator.totalPolls) / Double(tasks))
    }
}

struct BenchmarkResult {
    var name: String
    /// Sorted, unscaled seconds.
    var lags: [Double]
    /// The relay's own share of each lag (the poll that found the job finished → webhook), sorted, seconds.
    var relayShares: [Double]
    var pollsPerTask: Double

    func lag(_ q: Double) -> Double { quantile(lags, q) }
}
