import Foundation

/// Tunables of the submit → poll → deliver pipeline.
public struct EngineConfiguration: Sendable {
    /// When to poll running tasks.
    public var polling = PollPolicy()
    /// When an unfinished task is given up as `timeout`.
    public var deadlines = DeadlinePolicy()
    /// The shared upstream request allowance and breaker.
    public var upstream = UpstreamGate.Policy()
    /// Tasks in flight with the configured upstream key at most, across all relays; nil: no limit.
    public var configuredKeyMaxInFlight: Int?
    /// How long a claimed row stays owned; must exceed the longest HTTP call.
    public var leaseDuration: TimeInterval = 60
    /// How long an owner's heartbeat may be silent before its `submitting` tasks are judged abandoned.
    public var ownerSilenceLimit: TimeInterval = OwnerSilence.defaultLimit
    /// How long a task waits while the upstream account refuses work before it fails `upstream_account_unavailable`.
    public var accountHoldLimit: TimeInterval = 86_400
    /// A PostgreSQL relay warns while its host's clock is further than this from the database's.
    public var clockOffsetWarning: TimeInterval = 1
    /// How often the heartbeat is written: often enough that a tenth of the silence limit covers it.
    public var heartbeatInterval: Duration { .seconds(min(10, ownerSilenceLimit / 10)) }
    /// How often a PostgreSQL relay samples the database's clock.
    public var clockSyncInterval: Duration = .seconds(10)
    /// How long an idle worker sleeps before looking for due work again.
    public var idleInterval: Duration = .seconds(1)
    /// Submissions in flight at once; nil: sized from the upstream allowance (see `submitters`).
    public var submitConcurrency: Int?
    /// Polls in flight at once; nil: sized from the upstream allowance (see `pollers`).
    public var pollConcurrency: Int?
    /// Concurrent webhook attempts in all.
    public var deliveryConcurrency = 32
    /// Per-destination concurrency and circuit breaker.
    public var destinations = DestinationGate.Policy()
    /// An endpoint whose every attempt failed for this long is disabled.
    public var endpointDisableAfter: TimeInterval = 5 * 86_400
    /// How often endpoints are checked for that.
    public var endpointCheckInterval: Duration = .seconds(60)
    /// How long delivery attempt logs are kept.
    public var attemptRetention: TimeInterval = 30 * 86_400
    /// How long an `Idempotency-Key` keeps answering with its first task.
    public var idempotencyRetention: TimeInterval = 86_400
    /// Backoff for upstream failures worth retrying (submissions and polls).
    public var upstreamBackoff = Backoff(base: 2, maximum: 300)
    /// Consecutive 404s for a known upstream task before it is declared lost.
    public var notFoundLimit = 5
    /// Consecutive failed polls, the last one unreadable, before a task fails as `upstream_unreadable`.
    public var unreadableLimit = 10
    public var retrySchedule = RetrySchedule.standard
    public var deliveryConnectTimeout: TimeInterval = 5
    public var deliveryTimeout: TimeInterval = 15
    public var upstreamTimeout: TimeInterval = 30
    public var upstreamConnectTimeout: TimeInterval = 5

    public init() {}

    /// As many submissions in flight as the upstream allowance lets start in a second (a request takes
    /// about that long upstream), at least 4 and at most 64: a fixed few would leave a burst queued
    /// behind an allowance that could take it.
    public var submitters: Int { submitConcurrency ?? Self.sized(from: upstream.rate, minimum: 4) }
    /// Polls likewise, at least 16.
    public var pollers: Int { pollConcurrency ?? Self.sized(from: upstream.rate, minimum: 16) }

    static func sized(from rate: Double, minimum: Int) -> Int {
        guard rate.isFinite else { return minimum }
        return min(64, max(minimum, Int(min(rate, 64).rounded(.up))))
    }
}

/// Exponential backoff with full jitter in its upper half, capped.
public struct Backoff: Sendable, Equatable {
    public var base: TimeInterval
    public var maximum: TimeInterval

    public init(base: TimeInterval, maximum: TimeInterval) {
        self.base = base
        self.maximum = maximum
    }

    /// The delay after `failures` consecutive failures (1 = the first), at least `retryAfter`.
    public func delay(failures: Int, retryAfter: TimeInterval? = nil) -> TimeInterval {
        let exponential = min(maximum, base * pow(2, Double(max(0, failures - 1))))
        return max(exponential * Double.random(in: 0.5...1), retryAfter ?? 0)
    }
}
