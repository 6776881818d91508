import Foundation

/// A token bucket: `rate` tokens per second, holding at most `burst`.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var refilledAt: Date

    public init(rate: Double, burst: Double, now: Date) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.refilledAt = now
    }

    /// Takes up to `wanted` whole tokens; returns how many.
    public mutating func take(upTo wanted: Int, at now: Date) -> Int {
        refill(at: now)
        let granted = max(0, min(wanted, Int(tokens.rounded(.down))))
        tokens -= Double(granted)
        return granted
    }

    public mutating func refund(_ count: Int) {
        tokens = min(burst, tokens + Double(count))
    }

    /// Tokens available now (for metrics).
    public mutating func available(at now: Date) -> Double {
        refill(at: now)
        return tokens
    }

    /// Seconds until one token is available.
    public mutating func wait(at now: Date) -> TimeInterval {
        refill(at: now)
        return tokens >= 1 ? 0 : (1 - tokens) / rate
    }

    private mutating func refill(at now: Date) {
        tokens = min(burst, tokens + max(0, now.timeIntervalSince(refilledAt)) * rate)
        refilledAt = now
    }
}
