import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import VeoRelay
import VeoRelayDevTools

/// A burst offered at a fixed rate (open loop: tasks go out on schedule whether or not earlier ones
/// were answered) against the simulator with jobs of a fixed length and the upstream allowance lifted, as a
/// pipeline that submits a few thousand prompts at once, or a relay shared by many bots, would. It reports
/// accept → webhook minus the job's own length (what the relay and its polls added), each stage's
/// lateness while the burst lasts, and the relay's share after the upstream reported completion (the
/// poll that saw it → the webhook).
struct BurstScenario {
    var rate: Double
    var seconds: Double
    var jobSeconds: Double
    /// How far off the simulator's `estimated_time` may be, either way: an honest estimate lets the
    /// adaptive poll land on the job's end, a wrong one costs up to a poll interval.
    var estimateError: Double

    var tasks: Int { max(1, Int((rate * seconds).rounded())) }

    func run(postgres: String?) async throws -> [BurstResult] {
        let directory = NSTemporaryDirectory()
        let file = "\(directory)/veo-relay-bench-burst-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) } }
        var results = [try await measure(database: file, store: "SQLite")]
        if let postgres { results.append(try await measure(database: postgres, store: "PostgreSQL")) }
        return results
    }

    func rows(_ results: [BurstResult]) -> [BenchmarkRow] {
        results.flatMap { result in
            let lateness = result.lateness.map { "\($0.stage) \(format($0.mean))/\(format($0.max))" }.joined(separator: ", ")
            let offered = "\(tasks) tasks at \(format(rate, digits: 0))/s for \(format(seconds, digits: 0)) s, \(format(jobSeconds, digits: 1)) s jobs"
                + (estimateError > 0 ? ", estimated_time off by up to ±\(format(estimateError * 100, digits: 0)) %" : "")
            func quantiles(_ values: [Double], scale: Double = 1, digits: Int = 2) -> String {
                [0.5, 0.95, 0.99].map { format(quantile(values, $0) * scale, digits: digits) }.joined(separator: " / ")
            }
            return [
                BenchmarkRow(scenario: "burst", measure: "\(result.store), 1 relay, \(offered): accept → webhook minus the job, "
                                + "p50 / p95 / p99 s (stage lateness mean/max s: \(lateness); \(result.submitters) submissions in flight at most)",
                             relay: quantiles(result.lags), baseline: "—", ratio: "—",
                             target: result.store == "SQLite" ? "p95 ≤ 2 s" : "p95 ≤ 3 s"),
                BenchmarkRow(scenario: "burst", measure: "\(result.store), 1 relay, \(offered): the relay's share after the upstream reported "
                                + "completion (the poll that saw it → webhook), p50 / p95 / p99 ms",
                             relay: quantiles(result.shares, scale: 1_000, digits: 0), baseline: "—", ratio: "—",
                             target: result.store == "SQLite" ? "p95 ≤ 100 ms" : "—"),
            ]
        }
    }

    func measure(database: String, store: String) async throws -> BurstResult {
        var simulatorConfiguration = SimulatorConfiguration(apiKey: "bench-upstream", timeScale: 1)
        simulatorConfiguration.durations = [.fast: jobSeconds...jobSeconds, .quality: jobSeconds...jobSeconds]
        simulatorConfiguration.estimateAccuracy = (1 - estimateError)...(1 + estimateError)
        let simulator = UpstreamSimulator(configuration: simulatorConfiguration)
        let arrivals = Shared([String: ContinuousClock.Instant]())
        let wallArrivals = Shared([String: Date]())
        let secret = WebhookSecret.generate()
        let sink = try WebhookSink(secret: secret, captureFile: nil) { delivery in
            let (now, wall) = (ContinuousClock.now, Date())
            guard let data = (try? JSONValue.parse(delivery.body))?["data"], let task = data["task_id"]?.stringValue else { return }
            arrivals.value.withLock { $0[task] = $0[task] ?? now }
            if let upstream = data["upstream_task_id"]?.stringValue { wallArrivals.value.withLock { $0[upstream] = $0[upstream] ?? wall } }
        }
        let support = try await UpstreamAndSink(simulator: simulator, sink: sink)
        var relay = BenchmarkRelay(directory: NSTemporaryDirectory(), secret: secret, upstreamURL: support.upstreamURL)
        relay.configuration.databasePath = database
        // The upstream allowance is lifted; polls come at most a second apart, as the outside check had them.
        relay.configuration.engine.upstream.rate = 100_000
        relay.configuration.engine.upstream.burst = 100_000
        relay.configuration.engine.polling.ceiling = 1
        let submitters = relay.configuration.engine.submitters
        let (port, running, _) = try await relay.start()
        let database = try await StoreLocation.open(database, logger: .init(label: "bench"))
        let sampler = LatenessSampler(store: database)

        // Open loop: task `i` goes out at start + i / rate, answered or not.
        let accepted = Shared([String: ContinuousClock.Instant]())
        let started = ContinuousClock.now
        let refused = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<tasks {
                try await ContinuousClock().sleep(until: started + .seconds(Double(index) / rate))
                group.addTask {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/videos/generations")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: #"{"model":"veo3.1-fast-official","prompt":"burst \#(index)","callback_url":"\#(support.callbackURL)"}"#))
                    guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(60)), response.status == .ok,
                          let body = try? await response.body.collect(upTo: 1 << 16),
                          case .array(let entries)? = (try? JSONValue.parse(Data(buffer: body)))?["data"],
                          let task = entries.first?["task_id"]?.stringValue
                    else { return false }
                    accepted.value.withLock { $0[task] = ContinuousClock.now }
                    return true
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 0 : 1) }
        }
        guard refused == 0 else { throw BenchmarkFailure("burst: \(refused) of \(tasks) tasks were not accepted") }
        try await waitUntil("all \(tasks) burst webhooks", within: .seconds(600)) { arrivals.value.withLock { $0.count } >= tasks }
        let lateness = await sampler.stop()
        try await running.stop()
        database.close()
        try await support.stop()

        let accepts = accepted.value.withLock { $0 }
        let lags = arrivals.value.withLock { $0 }.compactMap { task, arrival in accepts[task].map { (arrival - $0).seconds - jobSeconds } }.sorted()
        let shares = wallArrivals.value.withLock { $0 }.compactMap { upstream, arrival in
            simulator.finishSeenTime(of: upstream).map { arrival.timeIntervalSince($0) }
        }.sorted()
        return BurstResult(store: store, lags: lags, shares: shares, lateness: lateness, submitters: submitters)
    }
}

struct BurstResult {
    var store: String
    /// Accept → webhook minus the job's length, sorted, seconds.
    var lags: [Double]
    /// The poll that saw the job finished → the webhook, sorted, seconds.
    var shares: [Double]
    var lateness: [(stage: String, mean: Double, max: Double)]
    var submitters: Int
}

/// Samples how overdue each stage's oldest due work is, every 100 ms, until stopped.
struct LatenessSampler {
    private let samples = Shared([String: [Double]]())
    private let task: Task<Void, Never>

    init(store: any StoreMaintenance) {
        let samples = self.samples
        task = Task {
            while !Task.isCancelled {
                let now = Date()
                if let backlog = try? await store.backlog(now: now) {
                    samples.value.withLock { samples in
                        for (stage, due) in [("submission", backlog.oldestDueSubmission), ("poll", backlog.oldestDuePoll),
                                             ("delivery", backlog.oldestDueDelivery)] {
                            samples[stage, default: []].append(due.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Each stage's mean and maximum lateness, in pipeline order.
    func stop() async -> [(stage: String, mean: Double, max: Double)] {
        task.cancel()
        await task.value
        return samples.value.withLock { $0 }.map { stage, values in
            (stage, values.reduce(0, +) / Double(max(1, values.count)), values.max() ?? 0)
        }.sorted { $0.stage > $1.stage }
    }
}
