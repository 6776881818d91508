import ArgumentParser
import Foundation
import Logging
import VeoRelay

/// `veo-relay benchmark`: each scenario measures the relay against the limit it could reach on this
/// machine, in the same run, and adds its rows to one table.
struct Benchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the relay against baselines run beside it (use a release build: swift run -c release veo-relay benchmark).")

    enum Scenario: String, CaseIterable, ExpressibleByArgument {
        case intake, delivery, pipeline, burst, scale, scaleOut = "scale-out", lag, streams, soak
    }

    @Option(help: "Run only this scenario (repeatable): \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")); all by default.")
    var scenario: [Scenario] = []

    @Flag(help: "Tiny sizes that finish in seconds, to check that every scenario still runs (the test command uses it); the figures mean nothing.")
    var smoke = false

    @Option(help: "Seconds of load per intake round.")
    var intakeSeconds = 5.0

    @Option(help: "Pending events the delivery scenario drains per round.")
    var events = 20_000

    @Option(help: "Tasks per poll schedule in the lag scenario (half fast, half quality).")
    var tasks = 200

    @Option(help: "Tasks the pipeline and scale-out scenarios run through.")
    var pipelineTasks = 2_000

    @Option(help: "Burst scenario: tasks offered per second.")
    var burstRate = 200.0

    @Option(help: "Burst scenario: seconds the burst lasts.")
    var burstSeconds = 15.0

    @Option(help: "Burst scenario: how long each simulated job takes, seconds.")
    var burstJobSeconds = 1.0

    @Option(help: "Burst scenario: the simulator's estimated_time is off by up to this fraction either way (0.5: ±50 %); 0 reports it exactly.")
    var burstEstimateError = 0.0

    @Option(help: "An empty PostgreSQL database for the scale-out and burst scenarios, which fill it (postgres://…); without one they run without PostgreSQL. [env: VEO_RELAY_BENCH_POSTGRES_URL]")
    var postgres: String?

    @Option(help: "Running tasks (and as many delivered events) the scale scenario fills its databases with.")
    var scaleRows = 1_000_000

    @Option(help: "Another empty PostgreSQL database, for the scale scenario on PostgreSQL; without one it runs on SQLite only. [env: VEO_RELAY_BENCH_SCALE_POSTGRES_URL]")
    var scalePostgres: String?

    @Option(help: "Event streams held open at once in the streams scenario.")
    var streams = 1_000

    @Option(help: "Times the streams scenario opens, holds and closes its streams.")
    var streamRounds = 3

    @Option(help: "Seconds of steady intake and delivery in the soak scenario.")
    var soakSeconds = 600

    @Option(help: "Tasks a second the soak scenario submits.")
    var soakRate = 100

    @Option(help: "Lag scenario: simulated time runs this much faster; 0.05 makes a 120 s job take 6 s.")
    var timeScale = 0.05

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .critical
            return handler
        }
        var rows: [BenchmarkRow] = []
        for scenario in scenario.isEmpty ? Scenario.allCases : scenario {
            var new: [BenchmarkRow]
            switch scenario {
            case .intake: new = try await IntakeScenario(round: .milliseconds(Int((smoke ? 0.3 : intakeSeconds) * 1_000))).run()
            case .delivery: new = try await DeliveryScenario(events: smoke ? 100 : events).run()
            case .pipeline: new = try await PipelineScenario(tasks: smoke ? 20 : pipelineTasks).runEmbedded()
            case .burst:
                let scenario = BurstScenario(rate: smoke ? 20 : burstRate, seconds: smoke ? 1 : burstSeconds, jobSeconds: smoke ? 0.2 : burstJobSeconds,
                                             estimateError: burstEstimateError)
                new = scenario.rows(try await scenario.run(postgres: postgres ?? Env.string("VEO_RELAY_BENCH_POSTGRES_URL")))
            case .scale:
                let scenario = ScaleScenario(rows: smoke ? 200 : scaleRows, seconds: .seconds(smoke ? 1 : 5))
                let file = NSTemporaryDirectory() + "veo-relay-bench-scale-\(UUID().uuidString).sqlite"
                defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) } }
                new = try await scenario.run(location: file, store: "SQLite")
                if let url = scalePostgres ?? Env.string("VEO_RELAY_BENCH_SCALE_POSTGRES_URL") {
                    new += try await scenario.run(location: url, store: "PostgreSQL")
                }
            case .scaleOut:
                guard let url = postgres ?? Env.string("VEO_RELAY_BENCH_POSTGRES_URL") else {
                    Console.line("scale-out: skipped (no --postgres)")
                    continue
                }
                new = try await PipelineScenario(tasks: smoke ? 20 : pipelineTasks).runScaleOut(url: url)
            case .lag: new = try await LagScenario(tasks: smoke ? 4 : tasks, timeScale: smoke ? 0.005 : timeScale).run()
            case .streams: new = try await StreamsScenario(streams: smoke ? 20 : streams, hold: .seconds(smoke ? 1 : 10), rounds: smoke ? 2 : streamRounds).run()
            case .soak: new = try await SoakScenario(duration: .seconds(smoke ? 3 : soakSeconds), rate: smoke ? 5 : soakRate,
                                                     sampleEvery: .seconds(smoke ? 1 : 30)).run()
            }
            for row in new { Console.line("\(row.scenario): \(row.measure): relay \(row.relay), baseline \(row.baseline), ratio \(row.ratio)") }
            rows += new
        }
        Console.line("")
        Console.line(Self.heading(smoke: smoke))
        Console.line("")
        Console.line("| scenario | measure | relay | baseline (the limit) | ratio | target |")
        Console.line("|---|---|---:|---:|---:|---|")
        for row in rows {
            Console.line("| \(row.scenario) | \(row.measure) | \(row.relay) | \(row.baseline) | \(row.ratio) | \(row.target) |")
        }
    }

    static func heading(smoke: Bool) -> String {
        #if DEBUG
        let build = "debug build (figures not representative)"
        #else
        let build = "release build"
        #endif
        let date = Date().formatted(.iso8601.year().month().day())
        return "veo-relay \(RelayVersion.current) benchmark, \(date), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(build)"
            + (smoke ? ", smoke sizes" : "")
    }
}
