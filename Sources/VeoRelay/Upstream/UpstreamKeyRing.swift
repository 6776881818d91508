import Foundation
import Synchronization

/// The upstream keys this relay works with: the configured one and those in the database
/// (`veo-relay upstream keys`), read again every `refreshInterval` so that a key added, disabled or
/// removed by an operator takes effect on every running relay without a restart. Each key with a
/// `rate` has its own allowance here, within the relay's `UpstreamGate`.
public final class UpstreamKeyRing: Sendable {
    public static let refreshInterval: TimeInterval = 2

    struct State {
        var stored: [UpstreamKey] = []
        var refreshedAt: Date?
        var buckets: [String: TokenBucket] = [:]
        /// Which enabled key the next claim asks first, so no shared key is always first.
        var turn = 0
    }

    private let configured: UpstreamKey
    private let store: any UpstreamAccounts
    private let clock: any WallClock
    private let state = Mutex(State())

    public init(configuredSecret: String, maxInFlight: Int? = nil, store: any UpstreamAccounts, clock: any WallClock) {
        configured = UpstreamKey(name: UpstreamKey.configuredName, secret: configuredSecret, maxInFlight: maxInFlight, createdAt: .distantPast)
        self.store = store
        self.clock = clock
    }

    /// The keys that take new submissions, the one to ask first first.
    func enabled() async throws -> [UpstreamKey] {
        try await refresh(force: false)
        return state.withLock { state in
            let keys = [configured] + state.stored.filter(\.enabled)
            state.turn = (state.turn + 1) % keys.count
            return Array(keys[state.turn...] + keys[..<state.turn])
        }
    }

    /// The secret of the key named `name` (nil: the configured key), enabled or not; nil if there is
    /// no such key, even after reading the database again.
    func secret(of name: String?) async throws -> Redacted? {
        guard let name, name != UpstreamKey.configuredName else { return configured.secret }
        if let found = state.withLock({ $0.stored.first { $0.name == name } }) { return found.secret }
        try await refresh(force: true)
        return state.withLock { $0.stored.first { $0.name == name }?.secret }
    }

    /// Takes up to `wanted` requests of `key`'s own rate; all of them for a key without one.
    func take(_ key: UpstreamKey, upTo wanted: Int) -> Int {
        guard let rate = key.rate else { return wanted }
        let now = clock.now()
        return state.withLock { state in
            if state.buckets[key.name]?.rate != rate { state.buckets[key.name] = TokenBucket(rate: rate, burst: max(1, rate), now: now) }
            return state.buckets[key.name]!.take(upTo: wanted, at: now)
        }
    }

    /// Gives back what `take` granted for requests that will not be made.
    func refund(_ key: UpstreamKey, _ count: Int) {
        guard key.rate != nil, count > 0 else { return }
        state.withLock { $0.buckets[key.name]?.refund(count) }
    }

    private func refresh(force: Bool) async throws {
        let now = clock.now()
        if !force, let at = state.withLock({ $0.refreshedAt }), now.timeIntervalSince(at) < Self.refreshInterval { return }
        let stored = try await store.upstreamKeys()
        state.withLock { state in
            state.stored = stored
            state.refreshedAt = now
        }
    }
}
