import Foundation

/// A circuit breaker's state: closed until `failureThreshold` consecutive failures, then open for a
/// cool-down, then half-open for exactly one probe whose result closes it or reopens it for twice as
/// long (up to `maxCooldown`). Used per webhook destination and for the upstream as a whole.
public struct CircuitBreaker: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        public var failureThreshold: Int
        public var cooldown: TimeInterval
        public var maxCooldown: TimeInterval

        public init(failureThreshold: Int, cooldown: TimeInterval, maxCooldown: TimeInterval) {
            self.failureThreshold = failureThreshold
            self.cooldown = cooldown
            self.maxCooldown = maxCooldown
        }
    }

    public enum Permission: Equatable {
        case allowed
        /// Half-open: one request may test the water.
        case probe
        case denied
    }

    public let policy: Policy
    private(set) var consecutiveFailures = 0
    private(set) var openUntil: Date?
    private var cooldown: TimeInterval
    private var probing = false

    public init(policy: Policy) {
        self.policy = policy
        self.cooldown = policy.cooldown
    }

    public func permission(at now: Date) -> Permission {
        guard let openUntil else { return .allowed }
        return now >= openUntil && !probing ? .probe : .denied
    }

    public func isOpen(at now: Date) -> Bool {
        openUntil.map { now < $0 } ?? false
    }

    /// Call when a request goes out under `.probe`.
    public mutating func beginProbe() {
        probing = true
    }

    /// The probe was granted but never sent: let the next request probe instead.
    public mutating func cancelProbe() {
        probing = false
    }

    public mutating func record(success: Bool, at now: Date) {
        if success {
            self = CircuitBreaker(policy: policy)
            return
        }
        consecutiveFailures += 1
        if probing {
            cooldown = min(policy.maxCooldown, cooldown * 2)
            openUntil = now.addingTimeInterval(cooldown)
        } else if consecutiveFailures >= policy.failureThreshold {
            openUntil = now.addingTimeInterval(cooldown)
        }
        probing = false
    }

    /// Holds everything back until `date` without counting a failure (a `Retry-After`).
    public mutating func pause(until date: Date) {
        if let openUntil, openUntil >= date { return }
        openUntil = date
    }
}
