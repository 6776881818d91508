import Foundation
import Hummingbird
import Synchronization

/// A per-client request rate limit on the API, answered with `429` and `Retry-After`.
public struct RateLimitMiddleware: RouterMiddleware {
    public typealias Context = RelayRequestContext

    public struct Policy: Sendable, Equatable {
        /// Requests per second per client.
        public var rate: Double = 20
        public var burst: Double = 40

        public init() {}
    }

    let policy: Policy
    let clock: any WallClock
    private let buckets = Buckets()

    public init(policy: Policy, clock: any WallClock) {
        self.policy = policy
        self.clock = clock
    }

    /// One bucket per client.
    final class Buckets: Sendable {
        let state = Mutex<[String: TokenBucket]>([:])
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let account = context.accountID else { throw APIError.unauthorized }
        let now = clock.now()
        let wait = buckets.state.withLock { buckets -> TimeInterval? in
            var bucket = buckets[account] ?? TokenBucket(rate: policy.rate, burst: policy.burst, now: now)
            defer { buckets[account] = bucket }
            return bucket.take(upTo: 1, at: now) == 1 ? nil : bucket.wait(at: now)
        }
        guard let wait else { return try await next(request, context) }
        var error = APIError(.tooManyRequests, type: "rate_limit_error",
                             message: "Too many requests for this API key; retry after the Retry-After delay.")
        error.headers[.retryAfter] = String(max(1, Int(wait.rounded(.up))))
        throw error
    }
}
