import ArgumentParser
import Foundation
import VeoRelay

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
