import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
@testable import VeoRelay

/// A service group running in the background of a test, reachable on a loopback port.
struct RunningServer: Sendable {
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts what `make` builds and returns once its server is listening.
    static func start(_ make: (_ onRunning: @escaping @Sendable (Int) async -> Void) async throws -> any Service) async throws -> RunningServer {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = try await make { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [service], logger: TestLog.logger))
        let task = Task { try await group.run() }
        ServerScope.enrol {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
        }
        guard let port = await ports.first(where: { _ in true }) else { throw TestFailure("server did not start") }
        return RunningServer(port: port, group: group, task: task)
    }

    /// An HTTP server on 127.0.0.1 with an ephemeral port.
    static func start(router: Router<BasicRequestContext>) async throws -> RunningServer {
        try await start { onRunning in
            Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                        onServerRunning: { await onRunning($0.localAddress?.port ?? 0) }, logger: TestLog.logger)
        }
    }

    /// Graceful shutdown, as on SIGTERM; returns when every service has ended.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum TestLog {
    static let logger: Logger = {
        var logger = Logger(label: "veo-relay-test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }()
}

/// Waits for `operation`, failing the test if it takes longer than `limit` (a timeout guard: the
/// result itself arrives by event, never by waiting a fixed time).
func within<T: Sendable>(_ limit: Duration = .seconds(20), _ what: String,
                         _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await ContinuousClock().sleep(for: limit) // timeout guard, not synchronisation
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next(), let value = result else { throw TestFailure("timed out waiting for \(what)") }
        return value
    }
}

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    /// Now, truncated to whole seconds so that times a test computes compare exactly.
    static func startingNow() -> ManualClock {
        ManualClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
    }

    func now() -> Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// Re-checks `condition` until it holds, failing after `limit`. For state the relay records after
/// the event a test observed (e.g. the attempt log written after the receiver answered).
func eventually(_ what: String, within limit: Duration = .seconds(20),
                _ condition: @escaping @Sendable () async throws -> Bool) async throws {
    try await within(limit, what) {
        while try await !condition() {
            try await ContinuousClock().sleep(for: .milliseconds(10)) // re-check interval, not synchronisation
        }
    }
}

/// The host's clock, moved on by hand on top: time runs as usual, and a test can make a moment come
/// at once (a probe due in seconds) without waiting for it.
final class ShiftedClock: WallClock {
    private let offset = Mutex<TimeInterval>(0)

    func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }

    func advance(by seconds: TimeInterval) {
        offset.withLock { $0 += seconds }
    }
}
