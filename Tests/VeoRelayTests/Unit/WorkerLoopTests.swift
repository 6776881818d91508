import Foundation
import Synchronization
import Testing
@testable import VeoRelay

/// The worker loop's timer: an item must be claimed when it falls due, not an idle interval later. The
/// idle interval here is an hour, so a loop that waits it out fails the test's time limit instead of
/// passing slowly; nothing waits on the wall clock otherwise.
@Suite("Worker loop", .stopsWhatItStarts)
struct WorkerLoopTests {
    /// A stage over an in-memory list of due times; `claim` takes what is due, `process` records it and
    /// runs the item's follow-up (which may schedule another item).
    final class ScriptedStage: PipelineStage, Sendable {
        struct Item: Sendable {
            var name: String
            var then: @Sendable () -> Void = {}
        }

        struct State {
            var due: [(item: Item, at: ContinuousClock.Instant)] = []
            var claims = 0
            var processed: [String] = []
            /// Runs at the end of the next claim (after it has looked for due items).
            var afterClaim: (@Sendable () -> Void)?
        }

        let state = Mutex(State())
        let done = AsyncStream<String>.makeStream()
        let name = "scripted"
        let leases = LeaseIssuer(instance: "test", stage: "scripted", duration: 60, clock: SystemClock())

        func schedule(_ item: Item, at instant: ContinuousClock.Instant) {
            state.withLock { $0.due.append((item, instant)) }
        }

        func claim(limit: Int) async throws -> [Item] {
            let (taken, after) = state.withLock { state in
                let now = ContinuousClock.now
                let taken = state.due.filter { $0.at <= now }.prefix(limit).map(\.item)
                state.due.removeAll { entry in entry.at <= now && taken.contains { $0.name == entry.item.name } }
                state.claims += 1
                defer { state.afterClaim = nil }
                return (taken, state.afterClaim)
            }
            after?()
            return taken
        }

        func process(_ item: Item) async {
            item.then()
            state.withLock { $0.processed.append(item.name) }
            done.continuation.yield(item.name)
        }

        func releaseLeases() async throws {}

        func untilNextDue() async -> Duration? {
            untilNextScheduled()
        }

        /// Every due time here was scheduled by this stage's own items or the test, all in memory.
        func untilNextScheduled() -> Duration? {
            state.withLock { state in state.due.map(\.at).min().map { $0 - .now } }
        }
    }

    /// Runs a loop over `stage` with an hour's idle interval until `expected` items were processed.
    private func run(_ stage: ScriptedStage, expecting expected: Int) async throws -> [String] {
        let loop = WorkerLoop(stage: stage, concurrency: 4, idleInterval: .seconds(3_600), wake: WakeSignal(),
                              logger: .init(label: "test"))
        let running = Task { try await loop.run() }
        defer { running.cancel() }
        return try await within(.seconds(60), "\(expected) items processed") {
            var names: [String] = []
            for await name in stage.done.stream {
                names.append(name)
                if names.count == expected { break }
            }
            return names
        }
    }

    @Test func anItemThatFallsDueDuringAClaimIsClaimedAtOnce() async throws {
        let stage = ScriptedStage()
        // The first claim finds nothing due; the item falls due as it ends, before the timer is set.
        stage.state.withLock { state in
            state.afterClaim = { [stage] in stage.schedule(.init(name: "late"), at: .now) }
        }
        #expect(try await run(stage, expecting: 1) == ["late"])
        #expect(stage.state.withLock { $0.claims } >= 2)
    }

    @Test func anItemScheduledWhileTheTimerRunsShortensIt() async throws {
        let stage = ScriptedStage()
        // "first" is due now; processing it schedules "second" shortly, after the loop has set its
        // timer for the idle interval (nothing else was due when it was set).
        stage.schedule(.init(name: "first") { [stage] in stage.schedule(.init(name: "second"), at: .now + .milliseconds(200)) }, at: .now)
        #expect(try await run(stage, expecting: 2) == ["first", "second"])
    }
}
