import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server `scripts/test` starts for the tests (`VEO_RELAY_TEST_POSTGRES_URL`).
enum TestPostgres {
    static let adminURL = ProcessInfo.processInfo.environment["VEO_RELAY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// A new, empty database on that server; returns its URL.
    static func freshDatabase() async throws -> String {
        let name = "relay_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await administer("CREATE DATABASE \(name)")
        guard var database = adminURL.flatMap(URLComponents.init(string:)) else { throw TestFailure("no server URL") }
        database.path = "/\(name)"
        return database.string!
    }

    /// Takes a database away from its users, as an outage would: new connections are refused and
    /// open ones are ended. `giveBack(_:)` gives it back.
    static func takeAway(_ url: String) async throws {
        let name = try databaseName(url)
        try await administer("ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
        try await administer("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
    }

    static func giveBack(_ url: String) async throws {
        try await administer("ALTER DATABASE \(try databaseName(url)) ALLOW_CONNECTIONS true")
    }

    private static func databaseName(_ url: String) throws -> String {
        guard let name = URLComponents(string: url)?.path.dropFirst(), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw TestFailure("no database name in \(url)")
        }
        return String(name)
    }

    /// Runs one statement on the server's `postgres` database.
    private static func administer(_ sql: String) async throws {
        guard let adminURL, let components = URLComponents(string: adminURL), let host = components.host else {
            throw TestFailure("VEO_RELAY_TEST_POSTGRES_URL is not set")
        }
        let client = PostgresClient(configuration: .init(host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                                                         password: components.password, database: "postgres", tls: .disable),
                                    backgroundLogger: TestLog.logger)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        try await client.query(PostgresQuery(unsafeSQL: sql))
    }
}
