/// Group commit: items submitted while a batch is being written wait and go together in the next
/// batch. Under load many items share one transaction (one commit, one sync to disk); an item on its
/// own is written at once, without waiting for company.
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

    private func writeWaiting() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(maxBatch))
            waiting.removeFirst(batch.count)
            do {
                let outcomes = try await write(batch.map(\.item))
                for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(returning: outcome) }
            } catch {
                for entry in batch { entry.continuation.resume(throwing: error) }
            }
        }
        writing = false
    }
}
