import Foundation

/// When to try a webhook again. The default follows Svix's schedule: after the first failure retry at
/// about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (≈ 27 h in all), each ±20 % so that a receiver
/// coming back up is not hit by every queued event in the same second.
public struct RetrySchedule: Sendable, Equatable {
    /// Delay before attempt n+1 (index 0 is the first attempt, normally immediate).
    public var delays: [TimeInterval]
    public var jitter: Double

    public init(delays: [TimeInterval], jitter: Double = 0.2) {
        precondition(!delays.isEmpty, "a schedule has at least one attempt")
        self.delays = delays
        self.jitter = jitter
    }

    public static let standard = RetrySchedule(delays: [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000])

    public var maxAttempts: Int { delays.count }

    /// When to make the next attempt after `attemptsMade` attempts failed; nil when the budget is spent.
    /// A `Retry-After` from the receiver pushes the time later, never earlier.
    public func nextAttempt(after attemptsMade: Int, now: Date, retryAfter: TimeInterval? = nil,
                            random: Double = Double.random(in: -1...1)) -> Date? {
        guard attemptsMade < delays.count else { return nil }
        let base = delays[attemptsMade] * (1 + jitter * random)
        return now.addingTimeInterval(max(base, retryAfter ?? 0))
    }

    /// Parses a list like `0,5s,5m,30m,2h` (plain numbers are seconds).
    public init(parsing text: String, jitter: Double = 0.2) throws(ConfigurationError) {
        let delays = try text.split(separator: ",").map { item throws(ConfigurationError) in
            try DurationText.seconds(String(item.trimmingCharacters(in: .whitespaces)))
        }
        guard !delays.isEmpty else { throw ConfigurationError("a retry schedule needs at least one delay") }
        self.init(delays: delays, jitter: jitter)
    }
}

/// Durations in configuration: `250ms`, `5s`, `5m`, `2h`, `1d` or plain seconds.
public enum DurationText {
    public static func seconds(_ text: String) throws(ConfigurationError) -> TimeInterval {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400)]
        func valid(_ value: Double?) -> Double? { value.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = valid(Double(text.dropLast(suffix.count))) { return value * factor }
        }
        if let value = valid(Double(text)) { return value }
        throw ConfigurationError("'\(text)' is not a duration (use e.g. 250ms, 5s, 5m, 2h)")
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
