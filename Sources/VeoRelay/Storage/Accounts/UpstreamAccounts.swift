import Foundation

/// The upstream keys and their standing, shared by every relay on the database. An account refusal (a
/// balance run out, a key revoked or without permission) is about the key's account, not the request:
/// while one holds a key, no relay submits with it except one probe at a time, and the first probe the
/// upstream accepts ends the hold. Other keys go on working.
public protocol UpstreamAccounts: Sendable {
    /// Records an account refusal of `key`: begins a hold (its first probe at `firstProbeAt`), or updates
    /// the reason of the hold under way. Whether it began one (then the clients whose tasks the key
    /// carries are told, `upstream.unavailable`, in the same transaction), and when the key is next tried.
    func holdAccount(key: String, reason: String, at now: Date, firstProbeAt: Date) async throws -> (began: Bool, nextProbeAt: Date)
    /// The holds under way, by key name.
    func accountHolds() async throws -> [AccountHold]
    /// Takes the probe that `hold` made due, and sets the one after at `next`: true for one caller only.
    func takeAccountProbe(_ hold: AccountHold, next: Date) async throws -> Bool
    /// Ends `key`'s hold, telling its clients (`upstream.restored`); when it began, if there was one.
    func releaseAccount(key: String, at now: Date) async throws -> Date?

    /// Adds a key; false if its name is taken.
    func addUpstreamKey(_ key: UpstreamKey) async throws -> Bool
    /// Every stored key (not the configured one), with its secret: for the relay's own use only.
    func upstreamKeys() async throws -> [UpstreamKey]
    /// Enables or disables a key; false if there is none by that name.
    func setUpstreamKey(_ name: String, enabled: Bool) async throws -> Bool
    /// Removes a key that no unfinished task was submitted with (`.inUse` with their count otherwise).
    func removeUpstreamKey(_ name: String) async throws -> KeyRemoval
    /// Tasks submitted (or claimed to be submitted) with each key and not finished upstream.
    func upstreamKeysInFlight(now: Date) async throws -> [String: Int]
}

public enum KeyRemoval: Sendable, Equatable {
    case removed
    case notFound
    /// Tasks submitted with it are still followed with it: disable it and remove it once they end.
    case inUse(tasks: Int)
}

/// Submissions with one key held because its upstream account refused work.
public struct AccountHold: Sendable, Equatable {
    public var key: String
    /// The upstream's words for the refusal, with its status.
    public var reason: String
    public var since: Date
    public var nextProbeAt: Date
    /// Probes taken so far; each waits longer than the one before (`AccountProbes`).
    public var probes: Int

    /// For operators (console, `veo-relay upstream status`): the key, the refusal, how long it has held
    /// and when the next probe goes.
    public func text(now: Date) -> String {
        "key \(key) refuses work (\(reason)) since \(since.formatted(.iso8601)), \(Int(now.timeIntervalSince(since))) s; "
            + "\(probes) probe(s) taken, the next at \(nextProbeAt.formatted(.iso8601))"
    }

    /// Every hold, one per line; nil without one.
    public static func text(_ holds: [AccountHold], now: Date) -> String? {
        holds.isEmpty ? nil : holds.map { $0.text(now: now) }.joined(separator: "\n")
    }
}

/// When a key under a hold is tried again: 5 s after the refusal, then twice as long after each
/// probe, up to 5 minutes, so a topped-up account resumes within minutes and a broke one is asked rarely.
public enum AccountProbes {
    public static let first: TimeInterval = 5
    public static let longest: TimeInterval = 300

    /// The wait before the next probe once `probes` have been taken (the first comes `first` after the refusal).
    static func interval(after probes: Int) -> TimeInterval {
        min(longest, first * pow(2, Double(min(probes + 1, 16))))
    }
}

/// One upstream key as operators see it (console, `veo-relay upstream keys list`): never its secret,
/// only the last four characters of it.
public struct UpstreamKeyReport: Sendable, Equatable {
    public var name: String
    /// `…abcd`; nil for the configured key, whose secret only the relay's configuration holds.
    public var hint: String?
    public var clientID: String?
    public var maxInFlight: Int?
    public var rate: Double?
    public var enabled: Bool
    public var inFlight: Int
    public var hold: AccountHold?

    /// The configured key first, then the stored ones, each with its hold and its tasks in flight.
    public static func all(in store: any UpstreamAccounts, now: Date) async throws -> [UpstreamKeyReport] {
        let (keys, holds, inFlight) = (try await store.upstreamKeys(), try await store.accountHolds(), try await store.upstreamKeysInFlight(now: now))
        let configured = UpstreamKeyReport(name: UpstreamKey.configuredName, hint: nil, clientID: nil, maxInFlight: nil, rate: nil, enabled: true,
                                           inFlight: inFlight[UpstreamKey.configuredName] ?? 0,
                                           hold: holds.first { $0.key == UpstreamKey.configuredName })
        return [configured] + keys.map { key in
            UpstreamKeyReport(name: key.name, hint: "…" + key.secret.value.suffix(4), clientID: key.clientID, maxInFlight: key.maxInFlight,
                              rate: key.rate, enabled: key.enabled, inFlight: inFlight[key.name] ?? 0, hold: holds.first { $0.key == key.name })
        }
    }

    /// One line: name, owner, limits, state.
    public func text(now: Date) -> String {
        var parts = [name + (hint.map { " (\($0))" } ?? " (configured)"), clientID.map { "client \($0)" } ?? "shared"]
        parts.append("max_in_flight \(maxInFlight.map(String.init) ?? "-")")
        parts.append("rate \(rate.map { "\($0)/s" } ?? "-")")
        parts.append("in flight \(inFlight)")
        parts.append(!enabled ? "DISABLED" : hold.map { "HELD: " + $0.text(now: now) } ?? "takes work")
        return parts.joined(separator: "  ")
    }
}
