import Foundation
import Hummingbird

/// `/console/upstream`: the upstream account's standing, this instance's view of the upstream (its breaker, request allowance and recent
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
        let view = UpstreamView(account: AccountHold.text(try await store.accountHold(), now: now) ?? "takes work", breaker: upstream.isOpen() ? "open (upstream paused)" : "closed",
                                tokens: String(format: "%.1f", upstream.availableTokens()), burst: "\(upstream.policy.burst)",
                                rate: "\(upstream.policy.rate)", requests: recent.requests, failures: recent.failures,
                                errorRate: recent.requests == 0 ? "no requests"
                                    : String(format: "%.1f %%", Double(recent.failures) * 100 / Double(recent.requests)),
                                openDestinations: destinations.openCircuits(at: now), backlog: rows)
        return pages.page("Upstream", "upstream", view, signedIn: try context.signedIn)
    }
}

struct UpstreamView {
    var account: String
    var breaker, tokens, burst, rate: String
    var requests, failures: Int
    var errorRate: String
    var openDestinations: Int
    var backlog: [NamedValue]
}
