import Foundation
import Logging
import ServiceLifecycle

/// Enforces the retention of delivery attempt logs: hourly, and once at start.
public struct RetentionService: Service {
    let store: any Store
    let clock: any WallClock
    let retention: TimeInterval
    let logger: Logger
    var interval: Duration = .seconds(3_600)

    public init(store: any Store, clock: any WallClock, retention: TimeInterval, logger: Logger) {
        self.store = store
        self.clock = clock
        self.retention = retention
        self.logger = logger
    }

    public func run() async throws {
        let wake = WakeSignal()
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully {
                await prune()
                await wake.wait(upTo: interval)
            }
        } onGracefulShutdown: {
            wake.signal()
        }
    }

    @discardableResult
    public func prune() async -> Int {
        do {
            let removed = try await store.pruneAttempts(before: clock.now().addingTimeInterval(-retention))
            if removed > 0 { logger.info("pruned delivery attempt logs", metadata: ["removed": "\(removed)"]) }
            return removed
        } catch {
            logger.error("could not prune delivery attempt logs", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
