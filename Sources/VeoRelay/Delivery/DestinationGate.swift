import Foundation
import Synchronization

/// Per-destination isolation for webhook delivery: a cap on concurrent attempts to one `host:port`
/// and a circuit breaker that stops attempting a destination after consecutive failures, probing it
/// with a single attempt once the cool-down has passed. A destination that hangs or fails therefore
/// holds at most its own slots and never the whole dispatcher.
///
/// The state is per relay instance and in memory on purpose: it is an optimisation of *when* to try,
/// while what to deliver and every attempt stay in the database.
public final class DestinationGate: Sendable {
    public struct Policy: Sendable, Equatable {
        public var maxConcurrent = 8
        /// Consecutive failures (no answer, 5xx, 429) that open the circuit.
        public var failureThreshold = 5
        public var cooldown: TimeInterval = 30
        public var maxCooldown: TimeInterval = 600

        public init() {}

        var breaker: CircuitBreaker.Policy {
            CircuitBreaker.Policy(failureThreshold: failureThreshold, cooldown: cooldown, maxCooldown: maxCooldown)
        }
    }

    struct Destination {
        var inFlight = 0
        var breaker: CircuitBreaker
    }

    public let policy: Policy
    private let destinations = Mutex<[String: Destination]>([:])

    public init(policy: Policy) {
        self.policy = policy
    }

    /// Destinations that must not be claimed now: full, open, or half-open with a probe out.
    public func blocked(at now: Date) -> Set<String> {
        destinations.withLock { all in
            Set(all.compactMap { key, destination in admits(destination, now: now) ? nil : key })
        }
    }

    /// Reserves a slot for one attempt; false when the destination cannot take it now.
    public func admit(_ key: String, at now: Date) -> Bool {
        destinations.withLock { all in
            var destination = all[key] ?? Destination(breaker: CircuitBreaker(policy: policy.breaker))
            guard admits(destination, now: now) else { return false }
            if destination.breaker.permission(at: now) == .probe { destination.breaker.beginProbe() }
            destination.inFlight += 1
            all[key] = destination
            return true
        }
    }

    /// Releases the slot and feeds the breaker.
    public func finish(_ key: String, healthy: Bool, at now: Date) {
        destinations.withLock { all in
            all[key]?.inFlight -= 1
            all[key]?.breaker.record(success: healthy, at: now)
        }
    }

    /// Whether the circuit is open (for logs and tests).
    public func isOpen(_ key: String, at now: Date) -> Bool {
        destinations.withLock { all in all[key]?.breaker.isOpen(at: now) ?? false }
    }

    /// How many destinations' circuits are open (for metrics).
    public func openCircuits(at now: Date) -> Int {
        destinations.withLock { all in all.values.count { $0.breaker.isOpen(at: now) } }
    }

    private func admits(_ destination: Destination, now: Date) -> Bool {
        switch destination.breaker.permission(at: now) {
        case .allowed: destination.inFlight < policy.maxConcurrent
        case .probe: destination.inFlight == 0
        case .denied: false
        }
    }
}
