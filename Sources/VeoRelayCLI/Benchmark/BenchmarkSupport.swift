import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import VeoRelay
import VeoRelayDevTools

/// One row of the benchmark table: what the relay achieved, the limit measured beside it, and the goal.
struct BenchmarkRow {
    var scenario: String
    var measure: String
    var relay: String
    var baseline: String
    var ratio: String = "—"
    var target: String = "—"
}

/// Median of a non-empty list.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count.isMultiple(of: 2) ? (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2 : sorted[sorted.count / 2]
}

func format(_ value: Double, digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

/// Services running in the background of a benchmark, stopped together.
struct Background {
    let group: ServiceGroup
    let task: Task<Void, any Error>

    init(_ services: [any Service]) {
        let group = ServiceGroup(configuration: .init(services: services, logger: Logger(label: "bench")))
        self.group = group
        task = Task { try await group.run() }
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// A server on an ephemeral loopback port that announces the port in `ports` under `name`.
func loopbackServer(_ router: Router<BasicRequestContext>, name: String, ports: PortBook) -> some Service {
    Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { ports.set(name, $0.localAddress?.port) }, logger: Logger(label: "bench"))
}

/// A simulated upstream and a webhook receiver on loopback, for the scenarios that run the whole pipeline.
struct UpstreamAndSink {
    let servers: Background
    let upstreamURL: String
    let callbackURL: String

    init(simulator: UpstreamSimulator, sink: WebhookSink) async throws {
        let simulatorRouter = Router(), sinkRouter = Router()
        simulator.addRoutes(to: simulatorRouter)
        sink.addRoutes(to: sinkRouter)
        let ports = PortBook()
        servers = Background([loopbackServer(simulatorRouter, name: "simulator", ports: ports),
                              loopbackServer(sinkRouter, name: "sink", ports: ports)])
        upstreamURL = "http://127.0.0.1:\(try await ports.wait("simulator"))"
        callbackURL = "http://127.0.0.1:\(try await ports.wait("sink"))/hook"
    }

    func stop() async throws { try await servers.stop() }
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
        throw BenchmarkFailure("\(name) did not start")
    }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A relay configured for measuring: API key `bench`, loopback callbacks allowed, no client rate
/// limit, its SQLite database in a fresh file under `directory` (on disk for the durable scenarios).
struct BenchmarkRelay {
    static let apiKey = "bench"
    let database: String
    var configuration = RelayConfiguration()

    init(directory: String, secret: WebhookSecret, upstreamURL: String) {
        database = "\(directory)/veo-relay-bench-\(UUID().uuidString).sqlite"
        configuration.port = 0
        configuration.databasePath = database
        configuration.upstream = .remote(url: upstreamURL, apiKey: "bench-upstream")
        configuration.apiKeys = [Self.apiKey]
        configuration.webhookSecret = secret.encoded
        configuration.callbacks.allowHTTP = true
        configuration.callbacks.addresses.allowed = [IPNetwork("127.0.0.0/8")!]
        configuration.rateLimit.rate = 1_000_000
        configuration.rateLimit.burst = 2_000_000
    }

    /// Keeps the submitter and poller idle (one upstream request a day), for scenarios that measure
    /// intake or delivery alone.
    mutating func withoutUpstreamTraffic() {
        configuration.engine.upstream.rate = 1.0 / 86_400
        configuration.engine.upstream.burst = 1
    }

    /// Builds the relay (which registers its client), runs `prepare`, then starts it; returns its
    /// port and the running group.
    func start(store: (any RelayStore)? = nil, prepare: () async throws -> Void = {}) async throws -> (port: Int, running: Background, relay: Relay) {
        let ports = PortBook()
        let relay = try await buildRelay(configuration, store: store, logger: Logger(label: "bench"),
                                         onServerRunning: { ports.set("relay", $0) })
        try await prepare()
        let running = Background([relay.application])
        return (try await ports.wait("relay"), running, relay)
    }

    func removeDatabase() {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
    }
}

/// The `q` quantile of sorted values (nearest rank); NaN when there are none.
func quantile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1))]
}

/// Re-checks `condition` every 20 ms until it holds; fails after `limit` (a guard, not a measurement).
func waitUntil(_ what: String, within limit: Duration = .seconds(120), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw BenchmarkFailure("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// `veo-relay serve` as a child process of the benchmark, on an ephemeral loopback port.
final class RelayChild: Sendable {
    private let process: Process
    private let output = Shared("")
    private let database: String?

    /// Removes its SQLite database when stopped, unless `keepDatabase`.
    init(environment: [String: String], keepDatabase: Bool = false) throws {
        let process = Process()
        process.executableURL = Bundle.main.executableURL
        process.arguments = ["serve", "--port", "0"]
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { mine, _ in mine }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        self.process = process
        database = keepDatabase ? nil : environment["VEO_RELAY_DATABASE"]
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let chunk = String(decoding: handle.availableData, as: UTF8.self)
            output.value.withLock { $0 = String(($0 + chunk).suffix(4_096)) }
        }
        try process.run()
    }

    /// The port from the banner's "listening on http://host:port" line.
    func port() async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, process.isRunning {
            let text = output.value.withLock { $0 }
            if let range = text.range(of: #"listening on http://[0-9.]+:[0-9]+"#, options: String.CompareOptions.regularExpression),
               let port = Int(text[range].split(separator: ":").last ?? "") {
                return port
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchmarkFailure("the relay did not start listening: \(output.value.withLock { $0 }.suffix(500))")
    }

    /// Resident memory from /proc/PID/status.
    func residentKiB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else {
            throw BenchmarkFailure("no VmRSS for the relay")
        }
        return kib
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        guard let database else { return }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
    }
}

/// A value behind a lock that closures can share.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }
}
