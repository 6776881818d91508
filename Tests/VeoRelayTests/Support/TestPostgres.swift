import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server `scripts/test` starts for the tests (`VEO_RELAY_TEST_POSTGRES_URL`).
enum TestPostgres {
    static let adminURL = ProcessInfo.processInfo.environment["VEO_RELAY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// A new, empty database on that server; returns its URL.
    static func freshDatabase() async throws -> String {
        guard let adminURL, let components = URLComponents(string: adminURL), let host = components.host else {
            throw TestFailure("VEO_RELAY_TEST_POSTGRES_URL is not set")
        }
        let name = "relay_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let client = PostgresClient(configuration: .init(host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                                                         password: components.password, database: "postgres", tls: .disable),
                                    backgroundLogger: TestLog.logger)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        var database = components
        database.path = "/\(name)"
        return database.string!
    }
}
