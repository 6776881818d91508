import Foundation
import Testing

/// The two stores, for tests that must hold on both. PostgreSQL cases run when the test command
/// started one (`VEO_RELAY_TEST_POSTGRES_URL`).
enum TestStores {
    enum Kind: String, Sendable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }

        /// A new, empty database: a SQLite file path or a PostgreSQL URL.
        func freshLocation() async throws -> String {
            switch self {
            case .sqlite: FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-test-\(UUID().uuidString).sqlite").path
            case .postgres: try await TestPostgres.freshDatabase()
            }
        }
    }

    static let all: [Kind] = TestPostgres.adminURL == nil ? [.sqlite] : [.sqlite, .postgres]

    /// How long a test's own store calls may take: far beyond what any takes, as tests check what the
    /// stores do, not how fast a loaded machine lets them.
    static let deadline: Duration = .seconds(120)
}
