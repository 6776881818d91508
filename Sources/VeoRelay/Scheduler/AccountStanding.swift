import Foundation
import Logging

/// How this relay acts on the upstream keys' standing (`UpstreamAccounts`): an account refusal holds
/// every relay's submissions with that key, the probes that come due are taken by one relay at a time,
/// and the first probe the upstream accepts lets the key's queue flow again. Logged once per change,
/// not per task.
struct AccountStanding: Sendable {
    let store: any UpstreamAccounts
    let clock: any WallClock
    let logger: Logger

    /// After an account refusal: holds submissions with `key` (or keeps holding them, with the newest
    /// reason). Returns when the key is next tried.
    @discardableResult
    func refused(key: String, status: Int, message: String) async throws -> Date {
        let now = clock.now()
        let reason = "HTTP \(status): \(message)"
        let hold = try await store.holdAccount(key: key, reason: reason, at: now, firstProbeAt: now.addingTimeInterval(AccountProbes.first))
        if hold.began {
            logger.error("the upstream account refuses work: submissions with this key held until a probe is accepted",
                         metadata: ["key": "\(key)", "reason": "\(reason)", "first_probe_in": "\(AccountProbes.first) s"])
        }
        return hold.nextProbeAt
    }

    /// The held keys among `keys` whose probe is due now and that this relay took (at most one relay
    /// takes each probe).
    func takeDueProbes(among keys: Set<String>) async throws -> [String] {
        let now = clock.now()
        var taken: [String] = []
        for hold in try await store.accountHolds() where keys.contains(hold.key) && hold.nextProbeAt <= now {
            let next = now.addingTimeInterval(AccountProbes.interval(after: hold.probes))
            guard try await store.takeAccountProbe(hold, next: next) else { continue }
            logger.notice("probing the upstream account with one submission", metadata: [
                "key": "\(hold.key)", "reason": "\(hold.reason)", "held_for": "\(Int(now.timeIntervalSince(hold.since))) s",
                "probe": "\(hold.probes + 1)"])
            taken.append(hold.key)
        }
        return taken
    }

    /// A probe the upstream accepted: the key's hold ends.
    func probeAccepted(key: String) async throws {
        guard let since = try await store.releaseAccount(key: key, at: clock.now()) else { return }
        logger.notice("the upstream account takes work again: submissions with this key resume",
                      metadata: ["key": "\(key)", "held_for": "\(Int(clock.now().timeIntervalSince(since))) s"])
    }
}
