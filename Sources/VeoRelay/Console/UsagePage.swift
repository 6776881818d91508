import Foundation
import Hummingbird

/// `/console/usage`: what each client used, per UTC day (a bar chart of the last 30 days and a
/// table) and per model, beside its budget. Read from the usage aggregate, like `GET /v1/usage`.
struct UsagePage: Sendable {
    let store: any UsageLedger & ClientDirectory
    let pages: ConsolePages
    let clock: any WallClock
    static let days = 30

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("usage", use: show)
    }

    @Sendable func show(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let now = clock.now()
        let clientID = request.uri.queryParameters.get("client").flatMap { $0.isEmpty ? nil : $0 }
        let last = UsagePeriod.day(of: now)
        let first = UsagePeriod.day(of: now.addingTimeInterval(-Double(Self.days - 1) * 86_400))
        let records = try await store.usage(clientID.map(ClientScope.client) ?? .allClients, from: first, through: last)
        let days = records.byDay(from: first, through: last)
        let chart = SVGChart(title: "Generations per UTC day", unit: "", series: [
            .init(name: "generations", color: "#1f5fbf", values: days.map { Double($0.counts.generations) }),
            .init(name: "cancelled", color: "#999", values: days.map { Double($0.counts.cancelled) }),
        ], startLabel: first, endLabel: last, bars: true)
        var budget: [NamedValue] = []
        if let clientID, let standing = try await store.budgetStanding(clientID: clientID, at: now) {
            budget = BudgetLimit.allCases.map { limit in
                let used = standing.use[limit]
                return NamedValue(name: limit.rawValue, value: standing.budget[limit].map { "\(used) of \($0) (\(max(0, $0 - used)) left)" }
                    ?? "\(used) (unlimited)")
            }
        }
        let clients = try await store.clients().map { ClientChoice(id: $0.id, name: $0.name, selected: $0.id == clientID) }
        let view = UsageView(clients: clients, client: clientID ?? "all clients", chart: chart.svg, budget: budget, hasBudget: !budget.isEmpty,
                             days: days.reversed().filter { $0.counts != UsageCounts() }.map { UsageLine(label: $0.day, $0.counts) },
                             models: records.byModel.map { UsageLine(label: $0.model, $0.counts) },
                             keys: try await store.upstreamUsage(clientID.map(ClientScope.client) ?? .allClients, from: first, through: last)
                                 .byUpstreamKey.map { UsageLine(label: $0.key, $0.counts) },
                             total: UsageLine(label: "total", records.totals))
        return pages.page("Usage", "usage", view, signedIn: try context.signedIn)
    }
}

struct UsageView {
    var clients: [ClientChoice]
    var client: String
    var chart: String
    var budget: [NamedValue]
    var hasBudget: Bool
    var days: [UsageLine]
    var models: [UsageLine]
    /// Generations each upstream key paid for.
    var keys: [UsageLine]
    var total: UsageLine
}

struct ClientChoice {
    var id, name: String
    var selected: Bool
}

/// A row of usage counts under a label (a day, a model, "total").
struct UsageLine {
    var label: String
    var generations, videoSeconds, succeeded, failed, cancelled: Int

    init(label: String, _ counts: UsageCounts) {
        self.label = label
        (generations, videoSeconds, succeeded, failed, cancelled) = (counts.generations, counts.videoSeconds, counts.succeeded,
                                                                    counts.failed, counts.cancelled)
    }
}
