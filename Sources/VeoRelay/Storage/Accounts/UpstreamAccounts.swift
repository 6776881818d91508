import Foundation

/// The upstream account's standing, shared by every relay on the database. An account refusal (a balance
/// run out, a key revoked or without permission) is about the account, not the request: while one
/// holds, no relay submits except one probe at a time, and the first probe the upstream accepts ends it.
public protocol UpstreamAccounts: Sendable {
    /// Records an account refusal: begins a hold (its first probe at `firstProbeAt`), or updates the
    /// reason of the hold under way. True when it began one.
    func holdAccount(reason: String, at now: Date, firstProbeAt: Date) async throws -> Bool
    /// The hold under way, if any.
    func accountHold() async throws -> AccountHold?
    /// Takes the probe that `hold` made due, and sets the one after at `next`: true for one caller only.
    func takeAccountProbe(_ hold: AccountHold, next: Date) async throws -> Bool
    /// Ends the hold; when it began, if there was one.
    func releaseAccount() async throws -> Date?
}

/// Submissions held because the upstream account refused work.
public struct AccountHold: Sendable, Equatable {
    /// The upstream's words for the refusal, with its status.
    public var reason: String
    public var since: Date
    public var nextProbeAt: Date
    /// Probes taken so far; each waits longer than the one before (`AccountProbes`).
    public var probes: Int

    /// For operators (console, `veo-relay upstream status`): the refusal, how long it has held and when
    /// the next probe goes; nil without a hold.
    public static func text(_ hold: AccountHold?, now: Date) -> String? {
        hold.map { hold in
            "refuses work (\(hold.reason)) since \(hold.since.formatted(.iso8601)), \(Int(now.timeIntervalSince(hold.since))) s; "
                + "\(hold.probes) probe(s) taken, the next at \(hold.nextProbeAt.formatted(.iso8601))"
        }
    }
}

/// When an account under a hold is tried again: 5 s after the refusal, then twice as long after each
/// probe, up to 5 minutes, so a topped-up account resumes within minutes and a broke one is asked rarely.
public enum AccountProbes {
    public static let first: TimeInterval = 5
    public static let longest: TimeInterval = 300

    /// The wait before the next probe once `probes` have been taken (the first comes `first` after the refusal).
    static func interval(after probes: Int) -> TimeInterval {
        min(longest, first * pow(2, Double(min(probes + 1, 16))))
    }
}
