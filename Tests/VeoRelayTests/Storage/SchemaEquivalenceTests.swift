import Foundation
import GRDB
import PostgresNIO
import Testing
@testable import VeoRelay

/// The two stores' migrations are written separately (SQL dialects differ); this keeps them from
/// drifting: the same tables, the same columns with the same kind of type and nullability, and the
/// same indexed column lists.
@Suite("Schema equivalence", .stopsWhatItStarts, .enabled(if: TestPostgres.adminURL != nil, "needs the test PostgreSQL"))
struct SchemaEquivalenceTests {
    /// table → column → "type class, nullable"; table → indexed column lists.
    struct Schema: Equatable, CustomStringConvertible {
        var columns: [String: [String: String]] = [:]
        var indexes: [String: Set<[String]>] = [:]
        var description: String { "columns: \(columns.sorted { $0.key < $1.key })\nindexes: \(indexes.sorted { $0.key < $1.key })" }
    }

    static let bookkeeping: Set<String> = ["grdb_migrations", "schema_migrations", "sqlite_sequence"]

    @Test func bothMigrationsProduceTheSameSchema() async throws {
        let sqlite = try await Self.sqliteSchema()
        let postgres = try await Self.postgresSchema()
        #expect(Set(sqlite.columns.keys) == ["clients", "tasks", "events", "delivery_attempts", "idempotency_keys", "shared_secrets", "submission_pauses",
                                                "usage_daily", "endpoints", "deliveries", "instances", "upstream_accounts", "upstream_keys",
                                                "upstream_usage_daily"])
        #expect(Set(sqlite.columns.keys) == Set(postgres.columns.keys))
        #expect(sqlite.columns["events"]?["task_id"] == "text, null", "the latest migration is there")
        #expect(sqlite.columns["events"]?["state"] == nil, "delivery state lives in deliveries")
        for table in sqlite.columns.keys.sorted() {
            #expect(sqlite.columns[table] == postgres.columns[table], "columns of \(table)")
            #expect(sqlite.indexes[table] == postgres.indexes[table], "indexes of \(table)")
        }
    }

    @Test func bothBackEndsNumberTheirMigrationsAlike() {
        #expect(SQLiteMigrations.migrator.migrations == PostgresMigrations.steps.map(\.name))
    }

    /// A database migrated under PostgreSQL's earlier numbering (its first step the whole initial schema,
    /// the rest four behind SQLite's) is renamed in place: no step runs again, none is skipped.
    @Test func aPostgresDatabaseNumberedTheEarlierWayKeepsItsSteps() async throws {
        let url = try await TestPostgres.freshDatabase()
        try await PostgresStore(url: url, logger: TestLog.logger).close()
        let client = try Self.client(url)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        for (old, new) in PostgresMigrations.renamed {
            try await client.query("DELETE FROM schema_migrations WHERE name = ANY(\(new))")
            try await client.query("INSERT INTO schema_migrations (name, applied_at) VALUES (\(old), 0)")
        }
        // A step run again would fail: its tables and indexes exist.
        try await PostgresStore(url: url, logger: TestLog.logger).close()
        var names: [String] = []
        for try await name in try await client.query("SELECT name FROM schema_migrations ORDER BY name").decode(String.self) { names.append(name) }
        #expect(names == PostgresMigrations.steps.map(\.name))
        #expect(PostgresMigrations.renamed.count == 11)
    }

    static func client(_ url: String) throws -> PostgresClient {
        let components = try #require(URLComponents(string: url))
        return PostgresClient(configuration: .init(host: components.host ?? "127.0.0.1", port: components.port ?? 5432,
                                                   username: components.user ?? "postgres", password: components.password,
                                                   database: String(components.path.dropFirst()), tls: .disable),
                              backgroundLogger: TestLog.logger)
    }

    static func sqliteSchema() async throws -> Schema {
        let path = try await TestStores.Kind.sqlite.freshLocation()
        // The store's WAL checkpointer may hold a lock for a moment: stop it, and wait out locks as the store does.
        try SQLiteStore(path: path, deadline: TestStores.deadline).close()
        let queue = try DatabaseQueue(path: path, configuration: SQLiteStore.connectionConfiguration)
        let classes = ["TEXT": "text", "REAL": "real", "INTEGER": "integer", "BLOB": "blob"]
        return try await queue.read { db in
            var schema = Schema()
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'").filter { !bookkeeping.contains($0) }
            for table in tables {
                let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))")
                let primaryKey = columns.filter { ($0["pk"] as Int) > 0 }.sorted { ($0["pk"] as Int) < ($1["pk"] as Int) }.map { $0["name"] as String }
                for column in columns {
                    let name: String = column["name"]
                    let nullable = (column["notnull"] as Int) == 0 && !primaryKey.contains(name)
                    schema.columns[table, default: [:]][name] = "\(classes[column["type"] as String] ?? "?"), \(nullable ? "null" : "not null")"
                }
                var indexes: Set<[String]> = [primaryKey]
                for index in try Row.fetchAll(db, sql: "PRAGMA index_list(\(table))") {
                    indexes.insert(try String.fetchAll(db, sql: "SELECT name FROM pragma_index_info(?) ORDER BY seqno", arguments: [index["name"] as String]))
                }
                schema.indexes[table] = indexes
            }
            return schema
        }
    }

    static func postgresSchema() async throws -> Schema {
        let url = try await TestPostgres.freshDatabase()
        try await PostgresStore(url: url, logger: TestLog.logger).close()
        let client = try Self.client(url)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let classes = ["text": "text", "double precision": "real", "bigint": "integer", "bytea": "blob"]
        var schema = Schema()
        let columns = try await client.query("""
            SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public'
            """)
        for try await (table, column, type, nullable) in columns.decode((String, String, String, String).self) where !bookkeeping.contains(table) {
            schema.columns[table, default: [:]][column] = "\(classes[type] ?? "?"), \(nullable == "YES" ? "null" : "not null")"
        }
        let indexes = try await client.query("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        for try await (table, definition) in indexes.decode((String, String).self) where !bookkeeping.contains(table) {
            // The column list is the last parenthesis before a partial index's WHERE.
            let columns = definition.components(separatedBy: " WHERE ")[0]
            let open = try #require(columns.lastIndex(of: "("))
            let close = try #require(columns.lastIndex(of: ")"))
            let list = columns[columns.index(after: open)..<close]
            schema.indexes[table, default: []].insert(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return schema
    }
}
