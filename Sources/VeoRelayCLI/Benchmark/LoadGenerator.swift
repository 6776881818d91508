import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// What a load run measured: answers as expected, other outcomes, wall time and sorted latencies.
struct LoadResult {
    var completed: Int
    var failed: Int
    var seconds: Double
    /// Seconds per request, sorted.
    var latencies: [Double]

    var rate: Double { Double(completed) / seconds }

    func latency(_ q: Double) -> Double { quantile(latencies, q) }
}

/// An HTTP load generator on AsyncHTTPClient: `connections` workers, each with one request in flight
/// at a time (closed loop), over one connection pool sized to match.
struct LoadGenerator {
    let connections: Int

    /// Sends requests made by `request(index)` until `duration` has passed (when `count` is nil) or
    /// until `count` requests have been answered; a request counts as completed when its answer has
    /// the `expected` status.
    func run(count: Int? = nil, duration: Duration = .seconds(3600), expected: HTTPResponseStatus = .ok,
             request: @escaping @Sendable (Int) -> HTTPClientRequest) async throws -> LoadResult {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let tickets = Tickets()
        let started = ContinuousClock.now
        let deadline = started + duration
        let workers = await withTaskGroup(of: LoadResult.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var result = LoadResult(completed: 0, failed: 0, seconds: 0, latencies: [])
                    while ContinuousClock.now < deadline {
                        let index = tickets.take()
                        if let count, index >= count { break }
                        let sent = ContinuousClock.now
                        do {
                            let response = try await client.execute(request(index), timeout: .seconds(60))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            if response.status == expected {
                                result.completed += 1
                                result.latencies.append((ContinuousClock.now - sent).seconds)
                            } else {
                                result.failed += 1
                            }
                        } catch {
                            result.failed += 1
                        }
                    }
                    return result
                }
            }
            return await group.reduce(into: [LoadResult]()) { $0.append($1) }
        }
        let seconds = (ContinuousClock.now - started).seconds
        try await client.shutdown()
        return LoadResult(completed: workers.map(\.completed).reduce(0, +), failed: workers.map(\.failed).reduce(0, +),
                          seconds: seconds, latencies: workers.flatMap(\.latencies).sorted())
    }
}

/// Hands out request numbers 0, 1, 2… to the workers.
final class Tickets: Sendable {
    private let next = Atomic(0)

    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}
