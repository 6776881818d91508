import Foundation

/// Numbers that arrive from outside — upstream answers, receivers' headers, rows an older version
/// stored — made safe before the relay converts or schedules with them: `Int(Double)` traps on NaN
/// and on values beyond `Int`, and a date a thousand years out is as wrong as a crash, only quieter.
/// A non-finite or negative value is ignored (nil); anything larger than `maximum` is clamped to it.
public enum ExternalNumber {
    public static func bounded(_ value: Double?, maximum: Double) -> Double? {
        guard let value, value.isFinite, value >= 0 else { return nil }
        return min(value, maximum)
    }

    /// The same as a whole number (rounded down). `maximum` must be well inside `Int`'s range.
    public static func boundedInteger(_ value: Double?, maximum: Int) -> Int? {
        bounded(value, maximum: Double(maximum)).map { Int($0) }
    }

    /// The last second of the year 9999: no timestamp the relay handles is later.
    public static let latestUnixSeconds = 253_402_300_799
}

extension Date {
    /// Unix seconds as a whole number, for any date, including absurd ones read back from storage.
    public var unixSeconds: Int {
        ExternalNumber.boundedInteger(timeIntervalSince1970, maximum: ExternalNumber.latestUnixSeconds) ?? 0
    }
}

/// An HTTP `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), as a delay in
/// seconds from `now`, at most `maximum`. Anything unreadable, negative or non-finite is ignored.
public enum RetryAfter {
    /// A receiver may ask to be left alone for at most a day (Svix caps it similarly).
    public static let deliveryMaximum: TimeInterval = 86_400
    /// The upstream's rate limit pauses all traffic, so its word counts for at most five minutes.
    public static let upstreamMaximum: TimeInterval = 300

    public static func seconds(_ header: String?, now: Date, maximum: TimeInterval) -> TimeInterval? {
        guard let text = header?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let delay = Double(text) { return ExternalNumber.bounded(delay, maximum: maximum) }
        guard let date = httpDate.withLock({ $0.date(from: text) }) else { return nil }
        return ExternalNumber.bounded(max(0, date.timeIntervalSince(now)), maximum: maximum)
    }

    // DateFormatter is not thread-safe; parsing an HTTP-date is rare enough for a lock.
    private static let httpDate = LockedFormatter()

    final class LockedFormatter: @unchecked Sendable {
        private let lock = NSLock()
        private let formatter: DateFormatter = {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            return formatter
        }()

        func withLock<T>(_ body: (DateFormatter) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(formatter)
        }
    }
}
