import ArgumentParser
import Foundation
import Logging
import VeoRelay

/// Where operator commands find the relay's state.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite database file or postgres:// URL. [env: VEO_RELAY_DATABASE, or VEO_RELAY_DATABASE_FILE naming a file that holds it] (default: veo-relay.sqlite)")
    var database: String?

    /// Runs `body` with the store open, and closes it after.
    func with<T>(_ body: (any RelayStore) async throws -> T) async throws -> T {
        let location = try database ?? Env.string("VEO_RELAY_DATABASE")
            ?? Serve.secret(fromFile: Env.string("VEO_RELAY_DATABASE_FILE"), named: "database URL") ?? RelayConfiguration().databasePath
        let store = try await StoreLocation.open(location, logger: Logger(label: "veo-relay"))
        defer { store.close() }
        return try await body(store)
    }
}
