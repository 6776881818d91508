import ArgumentParser
import Foundation
import VeoRelay

/// The upstream account as every relay on the database sees it.
struct Upstream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether the upstream account takes work: a hold on submissions (its reason, since when, the next probe) and the queue.",
        subcommands: [Status.self], defaultSubcommand: Status.self)

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the upstream account's standing and the tasks waiting; exits 3 while submissions are held.")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let now = Date()
            let (hold, backlog) = try await store.with { (try await $0.accountHold(), try await $0.backlog(now: now)) }
            Console.line("upstream account: " + (AccountHold.text(hold, now: now) ?? "takes work"))
            Console.line("tasks queued: \(backlog.tasksByState[.queued] ?? 0)")
            if hold != nil { throw ExitCode(3) }
        }
    }
}
