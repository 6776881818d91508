import ArgumentParser
import Foundation
import VeoRelay

struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what clients used, per UTC day and model: generations, seconds of video, and how tasks ended.",
        discussion: "Read from the usage aggregate, so it costs the same at any number of tasks. Cancelled tasks are not in generations.")

    @OptionGroup var store: StoreOptions
    @Option(help: "Only this client.") var client: String?
    @Option(help: "From this UTC day, yyyy-MM-dd (default: the first of this month).") var since: String?
    @Flag(help: "Generations each upstream key paid for (submitted tasks that ended), instead of the clients' usage.") var byUpstreamKey = false

    func run() async throws {
        let now = Date()
        let from = since ?? UsagePeriod.monthDays(of: now).first
        guard UsagePeriod.start(ofDay: from) != nil else { throw ValidationError("--since must be a date written yyyy-MM-dd") }
        let scope = client.map(ClientScope.client) ?? .allClients
        let records = try await store.with { [byUpstreamKey] store in
            byUpstreamKey ? try await store.upstreamUsage(scope, from: from, through: UsagePeriod.day(of: now))
                : try await store.usage(scope, from: from, through: UsagePeriod.day(of: now))
        }
        for line in UsageTable.lines(records, byUpstreamKey: byUpstreamKey) { Console.line(line) }
    }
}

/// Usage rows as an aligned text table with a total line (also printed by the crash harness).
enum UsageTable {
    static func lines(_ records: [UsageRecord], byUpstreamKey: Bool = false) -> [String] {
        let labels = byUpstreamKey ? ["day", "key", "client", "model"] : ["day", "client", "model"]
        let header = labels + ["generations", "video_s", "succeeded", "failed"] + (byUpstreamKey ? [] : ["cancelled"])
        func cells(_ counts: UsageCounts) -> [String] {
            ([counts.generations, counts.videoSeconds, counts.succeeded, counts.failed] + (byUpstreamKey ? [] : [counts.cancelled])).map(String.init)
        }
        func label(_ record: UsageRecord) -> [String] {
            [record.day] + (byUpstreamKey ? [record.upstreamKey ?? ""] : []) + [record.clientID, record.model]
        }
        let rows = records.map { label($0) + cells($0.counts) } + [["total"] + Array(repeating: "", count: labels.count - 1) + cells(records.totals)]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                column < labels.count ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }
}
