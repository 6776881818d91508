import Foundation
import GRDB

/// The embedded store: one SQLite file in WAL mode through GRDB. Writes are serialised by SQLite,
/// so a claim (an `UPDATE … RETURNING`) is atomic across every process that opens the file.
public final class SQLiteStore: Sendable {
    let pool: DatabasePool
    let checkpointer: WALCheckpointer
    let deadline: StoreDeadline
    let storageFull = StorageFullSignal()

    /// Every connection the store opens. Another connection may hold a lock for a moment (a writer in
    /// another process, a closing connection checkpointing, recovery after a crash): wait for it instead
    /// of failing. Without this, even opening a connection beside a busy writer can fail at its first
    /// read with "database is locked".
    static var connectionConfiguration: Configuration {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        return configuration
    }

    public init(path: String, deadline limit: Duration = StoreDeadline.defaultLimit) throws {
        deadline = StoreDeadline(limit: limit, database: "SQLite at \(StoreLocation.display(path))")
        pool = try DatabasePool(path: path, configuration: Self.connectionConfiguration)
        // An accepted task is answered only once committed; FULL syncs the WAL at every commit, so the
        // answer holds through an OS crash or power loss too (GRDB sets its WAL default, NORMAL, which
        // holds only through a crash of the process). Only the writer connection commits, and it lives
        // as long as the pool. Group commit spreads the sync over concurrent writes.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.writerBackstopPages)")
        }
        try SQLiteMigrations.migrator.migrate(pool)
        checkpointer = try WALCheckpointer(path: path)
    }

    /// A write whose loss to a power cut only repeats work that is safe to repeat (see
    /// `Outbox.recordAttempts`): committed without waiting for the WAL sync, which the next synced
    /// commit then covers. A crash of the process alone loses nothing either way.
    func repeatableWrite<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await bounded { [pool] in
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                let result = Result {
                    var value: T?
                    try db.inTransaction {
                        value = try updates(db)
                        return .commit
                    }
                    return value!
                }
                try db.execute(sql: "PRAGMA synchronous = FULL")
                return try result.get()
            }
        }
    }

    /// A read on the pool's readers, within the deadline.
    func read<T: Sendable>(_ value: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await bounded { [pool] in try await pool.read(value) }
    }

    /// A write transaction that waits for the disk sync, within the deadline.
    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await bounded { [pool] in try await pool.write(updates) }
    }

    /// Every database call: bounded by the deadline, a full disk reported as such.
    private func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await deadline.run(operation)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            storageFull.record()
            throw StorageFault.full(database: deadline.database)
        }
    }

    /// GRDB closes the pool when the store is released.
    public func close() {
        checkpointer.stop()
    }
}

extension Row: StoredRow {
    public func optionalText(_ column: String) -> String? { self[column] }
    public func optionalReal(_ column: String) -> Double? { self[column] }
    public func optionalInteger(_ column: String) -> Int? { self[column] }
    public func optionalBlob(_ column: String) -> Data? { self[column] }
}
