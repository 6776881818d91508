import GRDB

/// Copies the SQLite write-ahead log back into the database file from a connection of its own, once a
/// second, so that no commit of the writer's pays for it. SQLite's automatic checkpoint runs inside the
/// commit that crosses its threshold — a claim or an intake would then copy pages and sync a file of
/// gigabytes before it returns. A passive checkpoint takes no write lock, so the writer goes on. The
/// writer's automatic checkpoint stays as a backstop at a higher threshold, should this one fall behind.
final class WALCheckpointer: Sendable {
    /// The writer's own threshold, in pages (about 40 MB of WAL); SQLite's default is 1,000.
    static let writerBackstopPages = 10_000

    private let connection: DatabaseQueue
    private let loop: Task<Void, Never>

    init(path: String, every interval: Duration = .seconds(1)) throws {
        // A passive checkpoint never waits on the busy handler; opening the connection does.
        let connection = try DatabaseQueue(path: path, configuration: SQLiteStore.connectionConfiguration)
        self.connection = connection
        loop = Task.detached(priority: .background) {
            while (try? await Task.sleep(for: interval)) != nil {
                // A failed checkpoint (the file is busy, the disk is full) is retried at the next tick;
                // the writer's backstop bounds the WAL meanwhile.
                _ = try? await connection.writeWithoutTransaction { try $0.checkpoint(.passive) }
            }
        }
    }

    deinit { loop.cancel() }

    /// One passive checkpoint now: the frames in the WAL and how many of them are in the database file.
    @discardableResult
    func checkpoint() async throws -> (walFrameCount: Int, checkpointedFrameCount: Int) {
        try await connection.writeWithoutTransaction { try $0.checkpoint(.passive) }
    }

    func stop() { loop.cancel() }
}
