/// Group commit: items submitted while a batch is being written wait and go together in the next
/// batch. Under load many items share one transaction (one commit, one sync to disk); an item on its
/// own is written at once, without waiting for company. A batch that fails (rolled back whole) is
/// written again item by item, so that one bad item fails alone.
actor GroupCommit<Item: Sendable, Outcome: Sendable> {
    private let maxBatch: Int
    private let write: @Sendable ([Item]) async throws -> [Outcome]
    private var waiting: [(item: Item, continuation: CheckedContinuation<Outcome, any Error>)] = []
    private var writing = false

    /// `write` commits a batch and returns one outcome per item, in order.
    init(maxBatch: Int = 256, write: @escaping @Sendable ([Item]) async throws -> [Outcome]) {
        self.maxBatch = maxBatch
        self.write = write
    }

    /// Returns `item`'s outcome once the batch holding it is committed.
    func submit(_ item: Item) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((item, continuation))
            if !writing {
                writing = true
                Task { await writeWaiting() }
            }
        }
    }

    /// Items waiting for the next batch (for tests that hold a batch open).
    var waitingCount: Int { waiting.count }

    private func writeWaiting() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(maxBatch))
            waiting.removeFirst(batch.count)
            do {
                let outcomes = try await write(batch.map(\.item))
                for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(returning: outcome) }
            } catch where batch.count > 1 {
                for entry in batch {
                    do {
                        entry.continuation.resume(returning: try await write([entry.item])[0])
                    } catch {
                        entry.continuation.resume(throwing: error)
                    }
                }
            } catch {
                batch[0].continuation.resume(throwing: error)
            }
        }
        writing = false
    }
}
