import Foundation
import Logging
import ServiceLifecycle

/// Enforces retention, hourly and once at start: delivery attempt logs after `attemptRetention`,
/// idempotency keys after `idempotencyRetention`. A failed prune is retried with backoff; the loop
/// ends on graceful shutdown and on cancellation.
public struct RetentionService: Service, CustomStringConvertible {
    let store: any StoreMaintenance
    let clock: any WallClock
    let attemptRetention: TimeInterval
    let idempotencyRetention: TimeInterval
    let logger: Logger
    var interval: Duration = .seconds(3_600)

    public init(store: any StoreMaintenance, clock: any WallClock, attemptRetention: TimeInterval, idempotencyRetention: TimeInterval, logger: Logger) {
        self.store = store
        self.clock = clock
        self.attemptRetention = attemptRetention
        self.idempotencyRetention = idempotencyRetention
        self.logger = logger
    }

    public var description: String { "RetentionService" }

    public func run() async throws {
        await FailureBackoff(component: "retention", logger: logger).repeatEvery(interval, failure: "could not prune") {
            try await prune()
        }
    }

    /// Returns how many attempt-log entries and idempotency keys were removed.
    @discardableResult
    public func prune() async throws -> (attempts: Int, idempotencyKeys: Int) {
        let now = clock.now()
        let attempts = try await store.pruneAttempts(before: now.addingTimeInterval(-attemptRetention))
        let keys = try await store.pruneIdempotencyKeys(before: now.addingTimeInterval(-idempotencyRetention))
        if attempts + keys > 0 { logger.info("pruned", metadata: ["attempt_logs": "\(attempts)", "idempotency_keys": "\(keys)"]) }
        return (attempts, keys)
    }
}
