import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server `scripts/test` starts for the tests (`VEO_RELAY_TEST_POSTGRES_URL`).
enum TestPostgres {
    static let adminURL = ProcessInfo.processInfo.environment["VEO_RELAY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    /// The folder of that server's throwaway CA (`ca.crt`, and `other-ca.crt` which did not sign it),
    /// when it takes TLS (`VEO_RELAY_TEST_POSTGRES_TLS`).
    static let tlsCertificates = ProcessInfo.processInfo.environment["VEO_RELAY_TEST_POSTGRES_TLS"].flatMap { $0.isEmpty ? nil : $0 }

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
        try await withClient(database: "postgres") { client in _ = try await client.query(PostgresQuery(unsafeSQL: sql)) }
    }

    /// Runs `body` in a transaction of its own on the database `url` names (then commits it).
    static func inTransaction<T: Sendable>(_ url: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withClient(database: try databaseName(url)) { client in
            try await client.withTransaction(logger: TestLog.logger) { try await body($0) }
        }
    }

    private static func withClient<T: Sendable>(database: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
        guard let adminURL, let components = URLComponents(string: adminURL), let host = components.host else {
            throw TestFailure("VEO_RELAY_TEST_POSTGRES_URL is not set")
        }
        let client = PostgresClient(configuration: .init(host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                                                         password: components.password, database: database, tls: .disable),
                                    backgroundLogger: TestLog.logger)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        return try await body(client)
    }
}
