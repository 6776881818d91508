import Synchronization
import Testing
@testable import VeoRelay

/// Group commit batches what arrives during a write and isolates an item that fails its batch.
@Suite(.stopsWhatItStarts) struct GroupCommitTests {
    /// Records every batch written; the first write waits until the test opens the gate.
    final class Writer: Sendable {
        let batches = Mutex<[[Int]]>([])
        let gate: AsyncStream<Void>
        let open: AsyncStream<Void>.Continuation
        let firstHeld = Mutex(true)

        init() {
            (gate, open) = AsyncStream.makeStream()
        }

        /// Doubles each item; a batch holding a negative item fails whole.
        func write(_ batch: [Int]) async throws -> [Int] {
            batches.withLock { $0.append(batch) }
            if firstHeld.withLock({ held in defer { held = false }; return held }) {
                for await _ in gate { break }
            }
            if batch.contains(where: { $0 < 0 }) { throw TestFailure("negative item") }
            return batch.map { $0 * 2 }
        }
    }

    @Test func itemsArrivingDuringAWriteShareTheNextBatchAndAFailingItemFailsAlone() async throws {
        let writer = Writer()
        let commit = GroupCommit<Int, Int> { try await writer.write($0) }
        async let first = commit.submit(1)
        try await eventually("the first write to start") { writer.batches.withLock { $0.count } == 1 }
        async let second = commit.submit(2)
        let bad = Task { try await commit.submit(-3) }
        async let fourth = commit.submit(4)
        try await eventually("three items to wait for the next batch") { await commit.waitingCount == 3 }
        writer.open.yield()

        #expect(try await first == 2)
        #expect(try await second == 4)
        #expect(try await fourth == 8)
        await #expect(throws: TestFailure.self) { try await bad.value }
        let batches = writer.batches.withLock { $0 }
        #expect(batches.first == [1])
        #expect(batches.count > 1 && Set(batches[1]) == [2, -3, 4], "the three waited together: \(batches)")
        #expect(batches.dropFirst(2).map(\.count).allSatisfy { $0 == 1 }, "the failed batch was retried item by item: \(batches)")
    }

    /// Queued items are answered through their reply; a flush returns only once all are committed.
    @Test func aFlushWaitsForEveryQueuedItem() async throws {
        let writer = Writer()
        let commit = GroupCommit<Int, Int> { try await writer.write($0) }
        let replies = Mutex<[Int]>([])
        let reply: @Sendable (Result<Int, any Error>) -> Void = { result in replies.withLock { $0.append((try? result.get()) ?? -1) } }
        await commit.enqueue(1, reply: reply)
        try await eventually("the first write to start") { writer.batches.withLock { $0.count } == 1 }
        await commit.enqueue(2, reply: reply)
        let flushed = Task {
            await commit.flush()
            return replies.withLock { $0 }
        }
        try await eventually("the flush to wait") { await commit.flushingCount == 1 }
        #expect(replies.withLock { $0 }.isEmpty, "nothing is committed while the write is held")
        writer.open.yield()
        #expect(await flushed.value == [2, 4])
        await commit.flush()
    }
}
