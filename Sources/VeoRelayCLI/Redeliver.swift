import ArgumentParser
import Foundation
import VeoRelay

struct Redeliver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a task's latest webhook event again (same webhook-id, fresh set of retries), to every destination or to one.",
        discussion: "A running relay picks it up within a second.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "The relay task id.")
    var taskID: String

    @Option(help: "Only this event of the task (default: its latest).")
    var event: String?

    @Option(help: "Only this destination: 'callback' or an endpoint id (default: every destination the event went to).")
    var destination: String?

    func run() async throws {
        let target = destination.map(DeliveryTarget.init(named:))
        let records = try await store.with { try await $0.redeliver(taskID: taskID, scope: .allClients, eventID: event, target: target, now: Date()) }
        guard !records.isEmpty else { throw ValidationError("no task '\(taskID)' with such an event to deliver") }
        for record in records { Console.line("queued \(record.eventID) (\(record.type)) for \(record.key.target) \(record.url)") }
    }
}
