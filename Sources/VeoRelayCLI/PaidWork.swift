import ArgumentParser
import Foundation
import VeoRelay

/// Operator commands that keep paid work under control: take a task back, stop and restart submissions.
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take back a task that has not been submitted upstream: it ends cancelled and is never paid.",
        discussion: "Its task.failed event (status cancelled) is delivered like any other. A submitted task runs on.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "The relay task id.")
    var taskID: String

    func run() async throws {
        let outcome = try await store.with { store in
            try await TaskCancellation(store: store, clock: SystemClock()).cancel(taskID: taskID, scope: .allClients)
        }
        switch outcome {
        case .cancelled, .alreadyCancelled: Console.line("cancelled \(taskID)")
        case .alreadySubmitted: throw ValidationError("\(taskID) was already submitted upstream: it is paid and runs to completion")
        case .finished(let state): throw ValidationError("\(taskID) already ended (\(state.rawValue))")
        case .notFound: throw ValidationError("no task '\(taskID)'")
        }
    }
}

/// Which clients `pause` and `resume` act on.
struct PauseScopeOptions: ParsableArguments {
    @Option(help: "Only this client's submissions (default: every client's).")
    var client: String?

    var scope: ClientScope { client.map(ClientScope.client) ?? .allClients }
    var label: String { client.map { "client \($0)" } ?? "all clients" }
}

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop new submissions upstream, for one client or all, on every relay on this database.",
        discussion: """
            Takes effect at each relay's next submission claim (within a second). Intake keeps accepting, and polls, \
            deliveries and streams go on; `resume` lets the queued tasks go.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var scope: PauseScopeOptions

    func run() async throws {
        try await store.with { try await $0.pauseSubmissions(scope.scope, at: Date()) }
        Console.line("submissions paused for \(scope.label)")
    }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lift a pause made with `pause` (the same --client, or none for the pause of all).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var scope: PauseScopeOptions

    func run() async throws {
        guard try await store.with({ try await $0.resumeSubmissions(scope.scope) }) else {
            throw ValidationError("submissions were not paused for \(scope.label)")
        }
        Console.line("submissions resumed for \(scope.label)")
    }
}

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
