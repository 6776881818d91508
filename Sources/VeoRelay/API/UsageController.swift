import Foundation
import HTTPTypes
import Hummingbird

/// `GET /v1/usage?from=…&to=…&group_by=day|model|upstream_key`: a client's own usage (UTC days, both
/// ends included; this month so far by default) and its budget as it stands, read from the usage
/// aggregates, so its cost does not grow with the number of tasks. By upstream key, the rows are the
/// generations each key paid for (submitted tasks that ended), not the budget's counts.
public struct UsageController: Sendable {
    let store: any UsageLedger
    let clock: any WallClock

    /// The longest range one request may ask for.
    static let maximumDays = 366

    public func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.get("/usage", use: show)
    }

    @Sendable func show(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let now = clock.now()
        let parameters = request.uri.queryParameters
        let from = try Self.day(parameters.get("from"), param: "from") ?? UsagePeriod.monthDays(of: now).first
        let to = try Self.day(parameters.get("to"), param: "to") ?? UsagePeriod.day(of: now)
        guard from <= to else { throw APIError.invalidRequest("from must not be after to.", param: "from") }
        guard let start = UsagePeriod.start(ofDay: from), let end = UsagePeriod.start(ofDay: to),
              end.timeIntervalSince(start) < Double(Self.maximumDays) * 86_400 else {
            throw APIError.invalidRequest("The range may span at most \(Self.maximumDays) days.", param: "from")
        }
        let groupBy = parameters.get("group_by") ?? "day"
        guard ["day", "model", "upstream_key"].contains(groupBy) else {
            throw APIError.invalidRequest("group_by must be day, model or upstream_key.", param: "group_by")
        }
        let records = try await store.usage(.client(client.id), from: from, through: to)
        let rows: [UsageRow] = switch groupBy {
        case "day": records.byDay(from: from, through: to).map { UsageRow(day: $0.day, counts: $0.counts) }
        case "model": records.byModel.map { UsageRow(model: $0.model, counts: $0.counts) }
        default: try await store.upstreamUsage(.client(client.id), from: from, through: to).byUpstreamKey
            .map { UsageRow(upstreamKey: $0.key, counts: $0.counts) }
        }
        let standing = try await store.budgetStanding(clientID: client.id, at: now)
        let report = UsageReport(from: from, to: to, groupBy: groupBy, totals: records.totals, usage: rows,
                                 budget: standing.flatMap { $0.budget.isUnlimited ? nil : BudgetReport($0, at: now) })
        return try JSONResponse.make(.ok, Envelope(code: 200, data: report))
    }

    /// A `yyyy-MM-dd` parameter, checked to be a real date.
    static func day(_ value: String?, param: String) throws -> String? {
        guard let value else { return nil }
        guard UsagePeriod.start(ofDay: value) != nil else {
            throw APIError.invalidRequest("\(param) must be a UTC date written yyyy-MM-dd.", param: param)
        }
        return value
    }

    struct UsageReport: Encodable {
        var from, to: String
        var groupBy: String
        var totals: UsageCounts
        var usage: [UsageRow]
        var budget: BudgetReport?

        enum CodingKeys: String, CodingKey {
            case from, to, totals, usage, budget
            case groupBy = "group_by"
        }
    }

    struct UsageRow: Encodable {
        var day: String?
        var model: String?
        var upstreamKey: String?
        var counts: UsageCounts

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(day, forKey: .day)
            try container.encodeIfPresent(model, forKey: .model)
            try container.encodeIfPresent(upstreamKey, forKey: .upstreamKey)
            try counts.encode(to: encoder)
        }

        enum CodingKeys: String, CodingKey {
            case day, model
            case upstreamKey = "upstream_key"
        }
    }

    /// The client's limits, what it used of each, what is left, and when each period ends.
    struct BudgetReport: Encodable {
        var limits: [String: Int]
        var used: [String: Int]
        var remaining: [String: Int]
        var dayResetsAt: Int
        var monthResetsAt: Int

        init(_ standing: BudgetStanding, at now: Date) {
            func named(_ values: [BudgetLimit: Int]) -> [String: Int] { Dictionary(uniqueKeysWithValues: values.map { ($0.key.rawValue, $0.value) }) }
            limits = named(standing.budget.limits)
            used = named(Dictionary(uniqueKeysWithValues: BudgetLimit.allCases.map { ($0, standing.use[$0]) }))
            remaining = named(standing.remaining)
            dayResetsAt = UsagePeriod.day.end(of: now).unixSeconds
            monthResetsAt = UsagePeriod.month.end(of: now).unixSeconds
        }

        enum CodingKeys: String, CodingKey {
            case limits, used, remaining
            case dayResetsAt = "day_resets_at"
            case monthResetsAt = "month_resets_at"
        }
    }
}
