import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import VeoRelay

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
    func start(store: (any Store)? = nil, prepare: () async throws -> Void = {}) async throws -> (port: Int, running: Background, relay: Relay) {
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
