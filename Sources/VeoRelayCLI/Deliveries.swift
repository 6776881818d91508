import ArgumentParser
import Foundation
import VeoRelay

struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List webhook deliveries by state (default: failed, i.e. dead letters).")

    @OptionGroup var store: StoreOptions

    @Option(help: "pending, delivered, failed or gone.")
    var state: String = DeliveryState.failed.rawValue

    @Option(help: "At most this many, newest first.")
    var limit = 100

    func run() async throws {
        guard let state = DeliveryState(rawValue: state) else { throw ValidationError("unknown state '\(state)'") }
        for record in try await store.with({ try await $0.deliveries(scope: .allClients, state: state, limit: limit) }) {
            Console.line([record.eventID, record.taskID ?? "-", record.type, record.state.rawValue, "attempts=\(record.attempts)",
                          "last=\(record.lastStatusCode.map(String.init) ?? record.lastError ?? "-")", record.key.target.description, record.url]
                .joined(separator: "  "))
        }
    }
}
