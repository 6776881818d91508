import Foundation
import Synchronization

/// Protects the upstream: one request allowance (a token bucket, `rate` requests per second with bursts
/// up to `burst`) shared by submissions and polls, and a circuit breaker that pauses all upstream
/// traffic when the upstream is down instead of letting every task burn its retries, probing with one
/// request after the cool-down. A `429` with `Retry-After` pauses everyone for that long: the rate
/// limit is the account's, not the task's.
///
/// Tokens are taken when work is claimed, so a task waits for budget in the database (still due,
/// most overdue first), never holding a lease.
public final class UpstreamGate: Sendable {
    public struct Policy: Sendable, Equatable {
        /// Requests per second.
        public var rate: Double = 10
        /// Requests that may go out at once after a quiet spell.
        public var burst: Double = 10
        public var breaker = CircuitBreaker.Policy(failureThreshold: 5, cooldown: 5, maxCooldown: 300)

        public init() {}
    }

    struct State {
        var bucket: TokenBucket
        var breaker: CircuitBreaker
        var recent = RecentOutcomes()
    }

    public let policy: Policy
    private let clock: any WallClock
    private let state: Mutex<State>

    public init(policy: Policy, clock: any WallClock) {
        self.policy = policy
        self.clock = clock
        state = Mutex(State(bucket: TokenBucket(rate: policy.rate, burst: policy.burst, now: clock.now()),
                            breaker: CircuitBreaker(policy: policy.breaker)))
    }

    /// Takes up to `wanted` requests' worth of budget; 0 while the upstream is paused, 1 for a probe.
    public func take(upTo wanted: Int) -> Int {
        let now = clock.now()
        return state.withLock { state in
            let permission = state.breaker.permission(at: now)
            let allowed = switch permission {
            case .allowed: wanted
            case .probe: min(wanted, 1)
            case .denied: 0
            }
            let granted = state.bucket.take(upTo: allowed, at: now)
            if granted > 0, permission == .probe { state.breaker.beginProbe() }
            return granted
        }
    }

    /// Gives back budget taken for work that turned out not to be there (or needed no request).
    /// A refunded probe was never sent, so it must not keep the breaker waiting for its result.
    public func refund(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { state in
            state.bucket.refund(count)
            state.breaker.cancelProbe()
        }
    }

    /// Feeds the breaker with one request's outcome.
    func record(_ outcome: Outcome) {
        let now = clock.now()
        state.withLock { state in
            state.recent.record(failed: outcome != .answered, at: now)
            switch outcome {
            case .answered: state.breaker.record(success: true, at: now)
            case .failed: state.breaker.record(success: false, at: now)
            case .throttled(let retryAfter):
                state.breaker.record(success: false, at: now)
                if let retryAfter { state.breaker.pause(until: now.addingTimeInterval(retryAfter)) }
            }
        }
    }

    public func isOpen() -> Bool {
        let now = clock.now()
        return state.withLock { $0.breaker.isOpen(at: now) }
    }

    /// Request allowance left now (for metrics).
    public func availableTokens() -> Double {
        let now = clock.now()
        return state.withLock { $0.bucket.available(at: now) }
    }

    /// Upstream requests this instance made in the last `RecentOutcomes.window`, and how many failed.
    public func recentOutcomes() -> (requests: Int, failures: Int) {
        let now = clock.now()
        return state.withLock { $0.recent.counts(at: now) }
    }

    enum Outcome: Equatable {
        /// The upstream answered as a working service (2xx, or a 4xx about the request).
        case answered
        /// No answer, or a 5xx.
        case failed
        /// 429.
        case throttled(retryAfter: TimeInterval?)
    }
}

/// Outcomes of recent upstream requests, for the console's error rate: one counter pair per second
/// over the last five minutes, so memory stays fixed however busy the upstream is.
struct RecentOutcomes {
    static let window = 300
    private var seconds: [(second: Int, requests: Int, failures: Int)] = []

    mutating func record(failed: Bool, at date: Date) {
        let second = date.unixSeconds
        if seconds.last?.second != second { seconds.append((second, 0, 0)) }
        seconds[seconds.count - 1].requests += 1
        if failed { seconds[seconds.count - 1].failures += 1 }
        seconds.removeFirst(seconds.prefix { $0.second <= second - Self.window }.count)
    }

    func counts(at date: Date) -> (requests: Int, failures: Int) {
        let recent = seconds.filter { $0.second > date.unixSeconds - Self.window }
        return (recent.map(\.requests).reduce(0, +), recent.map(\.failures).reduce(0, +))
    }
}
