/// Group commit: items submitted while a batch is being written wait and go together in the next
/// batch. Under load many items share one transaction (one commit, one sync to disk); an item on its
/// own is written at once, without waiting for company. A batch that fails (rolled back whole) is
/// written again item by item, so that one bad item fails alone.
actor GroupCommit<Item: Sendable, Outcome: Sendable> {
    typealias Reply = @Sendable (Result<Outcome, any Error>) -> Void

    private let maxBatch: Int
    private let write: @Sendable ([Item]) async throws -> [Outcome]
    private var waiting: [(item: Item, reply: Reply)] = []
    private var writing = false
    private var flushes: [CheckedContinuation<Void, Never>] = []

    /// `write` commits a batch and returns one outcome per item, in order.
    init(maxBatch: Int = 256, write: @escaping @Sendable ([Item]) async throws -> [Outcome]) {
        self.maxBatch = maxBatch
        self.write = write
    }

    /// Returns `item`'s outcome once the batch holding it is committed.
    func submit(_ item: Item) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(item) { continuation.resume(with: $0) }
        }
    }

    /// Queues `item` without waiting for its batch; `reply` gets its outcome once committed.
    func enqueue(_ item: Item, reply: @escaping Reply) {
        waiting.append((item, reply))
        if !writing {
            writing = true
            Task { await writeWaiting() }
        }
    }

    /// Returns once every item queued before the call is committed (or has failed).
    func flush() async {
        guard writing else { return }
        await withCheckedContinuation { flushes.append($0) }
    }

    /// Items waiting for the next batch, and callers waiting in `flush` (for tests that hold a batch open).
    var waitingCount: Int { waiting.count }
    var flushingCount: Int { flushes.count }

    private func writeWaiting() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(maxBatch))
            waiting.removeFirst(batch.count)
            do {
                let outcomes = try await write(batch.map(\.item))
                for (entry, outcome) in zip(batch, outcomes) { entry.reply(.success(outcome)) }
            } catch where batch.count > 1 {
                for entry in batch {
                    do {
                        entry.reply(.success(try await write([entry.item])[0]))
                    } catch {
                        entry.reply(.failure(error))
                    }
                }
            } catch {
                batch[0].reply(.failure(error))
            }
        }
        writing = false
        for flush in flushes { flush.resume() }
        flushes = []
    }
}
