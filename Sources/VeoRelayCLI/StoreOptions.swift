import ArgumentParser
import Foundation
import Logging
import VeoRelay

/// Where operator commands find the relay's state.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite database file or postgres:// URL. [env: VEO_RELAY_DATABASE] (default: veo-relay.sqlite)")
    var database: String?

    /// Runs `body` with the store open, and closes it after.
    func with<T>(_ body: (any RelayStore) async throws -> T) async throws -> T {
        let store = try await StoreLocation.open(database ?? Env.string("VEO_RELAY_DATABASE") ?? RelayConfiguration().databasePath,
                                                 logger: Logger(label: "veo-relay"))
        defer { store.close() }
        return try await body(store)
    }
}
