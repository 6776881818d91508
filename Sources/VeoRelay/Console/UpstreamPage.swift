import Foundation
import Hummingbird

/// `/console/upstream`: the upstream keys and their standing, this instance's view of the upstream (its breaker, request allowance and recent
/// error rate), destinations behind open circuits, and the backlog of every stage.
struct UpstreamPage: Sendable {
    let store: any StoreMaintenance & UpstreamAccounts
    let upstream: UpstreamGate
    let destinations: DestinationGate
    let pages: ConsolePages
    let clock: any WallClock

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("upstream", use: show)
    }

    @Sendable func show(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let now = clock.now()
        let recent = upstream.recentOutcomes()
        let backlog = try await store.backlog(now: now)
        var rows = TaskState.allCases.map { NamedValue(name: "tasks \($0.rawValue)", value: "\(backlog.tasksByState[$0] ?? 0)") }
        rows += [("oldest due submission", backlog.oldestDueSubmission), ("oldest due poll", backlog.oldestDuePoll),
                 ("oldest due delivery", backlog.oldestDueDelivery)]
            .map { NamedValue(name: $0.0, value: $0.1.map { "\(Int(now.timeIntervalSince($0))) s late" } ?? "none") }
        let keys = try await UpstreamKeyReport.all(in: store, now: now).map { key in
            KeyRow(name: key.name, hint: key.hint ?? "configured", owner: key.clientID ?? "shared", maxInFlight: key.maxInFlight.map(String.init) ?? "-",
                   rate: key.rate.map { "\($0)/s" } ?? "-", inFlight: key.inFlight,
                   standing: !key.enabled ? "disabled" : key.hold.map { $0.text(now: now) } ?? "takes work", held: key.hold != nil)
        }
        let view = UpstreamView(keys: keys, breaker: upstream.isOpen() ? "open (upstream paused)" : "closed",
                                tokens: String(format: "%.1f", upstream.availableTokens()), burst: "\(upstream.policy.burst)",
                                rate: "\(upstream.policy.rate)", requests: recent.requests, failures: recent.failures,
                                errorRate: recent.requests == 0 ? "no requests"
                                    : String(format: "%.1f %%", Double(recent.failures) * 100 / Double(recent.requests)),
                                openDestinations: destinations.openCircuits(at: now), backlog: rows)
        return pages.page("Upstream", "upstream", view, signedIn: try context.signedIn)
    }
}

struct UpstreamView {
    var keys: [KeyRow]
    var breaker, tokens, burst, rate: String
    var requests, failures: Int
    var errorRate: String
    var openDestinations: Int
    var backlog: [NamedValue]
}

/// One upstream key on the page: its name and last four characters, never its secret.
struct KeyRow {
    var name, hint, owner, maxInFlight, rate: String
    var inFlight: Int
    var standing: String
    var held: Bool
}
