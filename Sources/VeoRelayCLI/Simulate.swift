import ArgumentParser
import Hummingbird
import VeoRelay
import VeoRelayDevTools

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a standalone upstream simulator (POST /v1/videos/generations, GET /v1/tasks/{id}).",
        discussion: "Put `[simulate:fail]` in a prompt to get a failed task.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8090

    @Option(help: "The Bearer key to require; without it any non-empty key is accepted.")
    var apiKey: String?

    @Option(help: "Multiply job durations by this factor (0.01 makes a 90 s job take 0.9 s).")
    var timeScale: Double = 1

    @Option(help: "Share of jobs that fail (0…1).")
    var failureRate: Double = 0

    @Option(help: "Share of requests that misbehave (0…1), spread evenly over 429 with Retry-After, 500, 503 (before any work), slow answers, and malformed JSON, dropped connections, 502 and 504 after the job was created.")
    var faultRate: Double = 0

    @Option(help: "Seconds a slow response is held back.")
    var slowDelay: Double = 0.5

    @Option(help: "Reported estimated_time is the true duration times a factor within ±this (0 = honest).")
    var estimateError: Double = 0

    @Option(help: "Seconds the video download of a finished job takes (sent in ten parts), so a relay can be stopped mid-download.")
    var videoSeconds: Double = 0

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.bootstrap(label: "veo-relay.simulator")
        var configuration = SimulatorConfiguration(apiKey: apiKey, timeScale: timeScale)
        configuration.failureRate = failureRate
        configuration.faults = .spread(faultRate)
        configuration.slowResponseDelay = slowDelay
        configuration.videoStreamDuration = videoSeconds
        configuration.estimateAccuracy = max(0.05, 1 - estimateError)...(1 + estimateError)
        let router = Router()
        router.middlewares.add(ErrorEnvelopeMiddleware(logger: logger))
        UpstreamSimulator(configuration: configuration).addRoutes(to: router)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        Console.line("upstream simulator on http://\(host):\(port) (time scale \(timeScale), failure rate \(failureRate), fault rate \(faultRate))")
        try await app.runService()
    }
}
