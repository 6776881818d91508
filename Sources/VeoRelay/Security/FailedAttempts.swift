import Foundation
import Logging
import Synchronization

/// Slows and shows guessing: failed authentications (an unknown API key or watch token, a wrong console
/// token) are counted per remote address in a token bucket (`burst` at once, then one per `interval`).
/// An address whose bucket is empty is answered `429` with `Retry-After` until it refills: the console's
/// sign-in then checks no token at all; the API still lets a valid key in (see `BearerAuthenticator`).
/// Each address's lock-out is logged once, without the credential. Bounded: when full, it starts afresh.
public final class FailedAttempts: Sendable {
    public struct Policy: Sendable, Equatable {
        public var burst = 10
        public var interval: TimeInterval = 6
        public init() {}
    }

    let policy: Policy
    let what: String
    private let clock: any WallClock
    private let logger: Logger
    private let buckets = Mutex<[String: (bucket: TokenBucket, warned: Bool)]>([:])
    static let capacity = 10_000

    public init(_ what: String, policy: Policy = Policy(), clock: any WallClock, logger: Logger) {
        self.what = what
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// Seconds until `address` may try again; nil while it may.
    func lockedOut(_ address: String) -> TimeInterval? {
        let now = clock.now()
        return buckets.withLock { buckets -> TimeInterval? in
            guard var entry = buckets[address] else { return nil }
            defer { buckets[address] = entry }
            let wait = entry.bucket.wait(at: now)
            guard wait > 0 else { return nil }
            if !entry.warned {
                entry.warned = true
                logger.warning("repeated failed \(what) from one address: its attempts are refused for a while",
                               metadata: ["address": "\(address)", "retry_after": "\(Int(wait.rounded(.up))) s"])
            }
            return wait
        }
    }

    /// Counts a failure from `address`.
    func failed(_ address: String) {
        let now = clock.now()
        buckets.withLock { buckets in
            if buckets[address] == nil, buckets.count >= Self.capacity { buckets.removeAll() }
            var entry = buckets[address]
                ?? (TokenBucket(rate: 1 / policy.interval, burst: Double(policy.burst), now: now), false)
            if entry.bucket.take(upTo: 1, at: now) == 1 { entry.warned = false }
            buckets[address] = entry
        }
    }

    /// After a failure from `address`: counts it, and throws the `429` when the address has failed too often.
    func refuse(_ address: String) throws(APIError) {
        if let wait = lockedOut(address) { throw Self.refusal(retryAfter: wait, what: what) }
        failed(address)
    }

    /// The answer to a locked-out address.
    static func refusal(retryAfter seconds: TimeInterval, what: String) -> APIError {
        var error = APIError(.tooManyRequests, type: "too_many_failed_attempts",
                             message: "Too many failed \(what) from this address; try again in \(Int(seconds.rounded(.up))) s.")
        error.headers[.retryAfter] = "\(Int(seconds.rounded(.up)))"
        return error
    }
}
