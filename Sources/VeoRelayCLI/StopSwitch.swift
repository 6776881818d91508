import ArgumentParser
import Foundation
import VeoRelay

// The stop switch: submissions upstream paused and resumed, for one client or all, on every relay of the database.

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
