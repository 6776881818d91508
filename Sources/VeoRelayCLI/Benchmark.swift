import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import VeoRelay

/// Notification lag and upstream polls per task, for the adaptive schedule against fixed intervals,
/// all measured in one run on loopback: simulator + relay + webhook sink, with time compressed by
/// `--time-scale` and every relay timing scaled by the same factor, so results read in real seconds.
struct Benchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure notification lag and polls per task for several poll schedules (run with -c release).")

    @Option(help: "Tasks per schedule (half fast, half quality).")
    var tasks = 200

    @Option(help: "Simulated time runs this much faster: 0.05 makes a 120 s job take 6 s.")
    var timeScale = 0.05

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .critical
            return handler
        }
        let scenarios: [(String, PollPolicy.Mode, ClosedRange<Double>)] = [
            ("adaptive, honest estimated_time", .adaptive, 1...1),
            ("adaptive, estimated_time off by up to ±50 %", .adaptive, 0.5...1.5),
            ("fixed 5 s", .fixed(5), 1...1),
            ("fixed 30 s", .fixed(30), 1...1),
        ]
        var results: [BenchmarkResult] = []
        for (name, mode, accuracy) in scenarios {
            let result = try await measure(name: name, mode: mode, estimateAccuracy: accuracy)
            Console.line("\(name): p50 \(format(result.lag(0.5))) s, p99 \(format(result.lag(0.99))) s, \(format(result.pollsPerTask)) polls/task")
            results.append(result)
        }
        let baseline = results.first { $0.name == "fixed 5 s" }!
        Console.line("")
        Console.line("\(tasks) tasks per schedule (fast 60–180 s, quality 120–360 s), time scale \(timeScale); lag = upstream completion → webhook received, in unscaled seconds")
        Console.line("")
        Console.line("| schedule | p50 lag (s) | p99 lag (s) | max lag (s) | polls/task | polls vs fixed 5 s |")
        Console.line("|---|---:|---:|---:|---:|---:|")
        for result in results {
            Console.line("| \(result.name) | \(format(result.lag(0.5))) | \(format(result.lag(0.99))) | \(format(result.lag(1))) | \(format(result.pollsPerTask)) | \(format(baseline.pollsPerTask / result.pollsPerTask))× fewer |")
        }
    }

    func format(_ value: Double) -> String { String(format: "%.2f", value) }

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

        let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let database = "\(directory)/veo-relay-bench-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) } }

        let simulatorRouter = Router()
        simulator.addRoutes(to: simulatorRouter)
        let sinkRouter = Router()
        sink.addRoutes(to: sinkRouter)
        let ports = PortBook()
        let simulatorApp = Application(router: simulatorRouter, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                       onServerRunning: { ports.set("simulator", $0.localAddress?.port) })
        let sinkApp = Application(router: sinkRouter, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { ports.set("sink", $0.localAddress?.port) })
        let support = ServiceGroup(configuration: .init(services: [simulatorApp, sinkApp], logger: Logger(label: "bench")))
        let supportTask = Task { try await support.run() }
        let simulatorPort = try await ports.wait("simulator")
        let sinkPort = try await ports.wait("sink")

        var configuration = RelayConfiguration()
        configuration.port = 0
        configuration.databasePath = database
        configuration.upstream = .remote(url: "http://127.0.0.1:\(simulatorPort)", apiKey: "bench-upstream")
        configuration.apiKeys = ["bench"]
        configuration.webhookSecret = secret.encoded
        // Everything runs on loopback: allow it, and let the benchmark submit as fast as it likes.
        configuration.callbacks.allowHTTP = true
        configuration.callbacks.addresses.allowed = [IPNetwork("127.0.0.0/8")!]
        configuration.rateLimit.rate = 100_000
        configuration.rateLimit.burst = 100_000
        var engine = configuration.engine
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
        // The schedules are compared, not the budget: give every schedule all the upstream it asks for.
        engine.upstream.rate = 10_000
        engine.upstream.burst = 10_000
        engine.pollConcurrency = 64
        engine.submitConcurrency = 16
        configuration.engine = engine
        let relay = try await buildRelay(configuration, logger: Logger(label: "bench"), onServerRunning: { ports.set("relay", $0) })
        let relayGroup = ServiceGroup(configuration: .init(services: [relay.application], logger: Logger(label: "bench")))
        let relayTask = Task { try await relayGroup.run() }
        let relayPort = try await ports.wait("relay")

        for index in 0..<tasks {
            let model = index.isMultiple(of: 2) ? "veo3.1-fast-official" : "veo3.1-quality-official"
            let body: JSONValue = .object(["model": .string(model), "prompt": .string("benchmark \(index)"),
                                           "callback_url": .string("http://127.0.0.1:\(sinkPort)/hook")])
            let (status, answer) = try await RelayHTTP(base: "http://127.0.0.1:\(relayPort)", key: "bench")
                .send(.POST, "/v1/videos/generations", body: try JSONCoding.encode(body))
            guard status == 200 else { throw ValidationError("the relay refused a benchmark task: \(status) \(answer)") }
        }
        let limit = Date().addingTimeInterval(400 * scale * 3 + 30)
        while arrivals.withLock({ $0.count }) < tasks, Date() < limit {
            try await Task.sleep(for: .milliseconds(50))
        }
        await relayGroup.triggerGracefulShutdown()
        try await relayTask.value
        await support.triggerGracefulShutdown()
        try await supportTask.value

        let lags = arrivals.withLock { $0 }.compactMap { id, arrival in
            simulator.completionTime(of: id).map { arrival.timeIntervalSince($0) / scale }
        }
        guard lags.count == tasks else { throw ValidationError("\(name): only \(lags.count) of \(tasks) webhooks arrived") }
        return BenchmarkResult(name: name, lags: lags.sorted(), pollsPerTask: Double(simulator.totalPolls) / Double(tasks))
    }
}

struct BenchmarkResult {
    var name: String
    /// Sorted, unscaled seconds.
    var lags: [Double]
    var pollsPerTask: Double

    func lag(_ quantile: Double) -> Double {
        lags[min(lags.count - 1, Int((Double(lags.count) * quantile).rounded(.up)) - 1)]
    }
}

/// Ports of servers started in the background, announced once they listen.
final class PortBook: Sendable {
    private let ports = Mutex<[String: Int]>([:])

    func set(_ name: String, _ port: Int?) {
        ports.withLock { $0[name] = port }
    }

    func wait(_ name: String) async throws -> Int {
        for _ in 0..<500 {
            if let port = ports.withLock({ $0[name] }) { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("\(name) did not start")
    }
}
