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

    func run() async throws {
        let now = Date()
        let from = since ?? UsagePeriod.monthDays(of: now).first
        guard UsagePeriod.start(ofDay: from) != nil else { throw ValidationError("--since must be a date written yyyy-MM-dd") }
        let records = try await store.with { try await $0.usage(client.map(ClientScope.client) ?? .allClients, from: from, through: UsagePeriod.day(of: now)) }
        for line in UsageTable.lines(records) { Console.line(line) }
    }
}

/// Usage rows as an aligned text table with a total line (also printed by the crash harness).
enum UsageTable {
    static func lines(_ records: [UsageRecord]) -> [String] {
        let header = ["day", "client", "model", "generations", "video_s", "succeeded", "failed", "cancelled"]
        func cells(_ counts: UsageCounts) -> [String] {
            [counts.generations, counts.videoSeconds, counts.succeeded, counts.failed, counts.cancelled].map(String.init)
        }
        let rows = records.map { [$0.day, $0.clientID, $0.model] + cells($0.counts) } + [["total", "", ""] + cells(records.totals)]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                column < 3 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }
}
