import ArgumentParser
import Foundation
import VeoRelay

struct Resubmit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a failed task to the upstream again — a new, paid generation.",
        discussion: """
            For tasks that failed with submission_outcome_unknown (the first submission may or may not have \
            reached the upstream), or after fixing what made the upstream reject them. The relay never does \
            this on its own. A running relay picks the task up within a second; its webhooks follow as usual.
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: "The relay task id.")
    var taskID: String

    func run() async throws {
        guard try await store.with({ try await $0.resubmit(taskID: taskID, now: Date()) }) else {
            throw ValidationError("no failed task '\(taskID)'")
        }
        Console.line("queued \(taskID) for a new submission")
    }
}
