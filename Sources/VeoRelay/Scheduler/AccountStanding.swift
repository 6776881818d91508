import Foundation
import Logging

/// How this relay acts on the upstream account's standing (`UpstreamAccounts`): an account refusal
/// holds every relay's submissions, the probes that come due are taken by one relay at a time, and
/// the first probe the upstream accepts lets the queue flow again. Logged once per change, not per task.
struct AccountStanding: Sendable {
    let store: any UpstreamAccounts
    let clock: any WallClock
    let logger: Logger

    /// After an account refusal: holds submissions (or keeps holding them, with the newest reason).
    func refused(status: Int, message: String) async throws {
        let now = clock.now()
        let reason = "HTTP \(status): \(message)"
        if try await store.holdAccount(reason: reason, at: now, firstProbeAt: now.addingTimeInterval(AccountProbes.first)) {
            logger.error("the upstream account refuses work: submissions held until a probe is accepted",
                         metadata: ["reason": "\(reason)", "first_probe_in": "\(AccountProbes.first) s"])
        }
    }

    /// Whether this relay takes the probe due now (at most one relay takes each).
    func takeDueProbe() async throws -> Bool {
        let now = clock.now()
        guard let hold = try await store.accountHold(), hold.nextProbeAt <= now else { return false }
        let next = now.addingTimeInterval(AccountProbes.interval(after: hold.probes))
        guard try await store.takeAccountProbe(hold, next: next) else { return false }
        logger.notice("probing the upstream account with one submission", metadata: [
            "reason": "\(hold.reason)", "held_for": "\(Int(now.timeIntervalSince(hold.since))) s", "probe": "\(hold.probes + 1)"])
        return true
    }

    /// A probe the upstream accepted: the hold ends.
    func probeAccepted() async throws {
        guard let since = try await store.releaseAccount() else { return }
        logger.notice("the upstream account takes work again: submissions resume",
                      metadata: ["held_for": "\(Int(clock.now().timeIntervalSince(since))) s"])
    }
}
