import Logging
import ServiceLifecycle

/// One stage of the pipeline: what it claims from the store, and what it does with each item.
public protocol PipelineStage: Sendable {
    associatedtype Item: Sendable
    var name: String { get }
    /// Issues the leases of every claim this stage makes (owners `<instance>/<stage>/…`).
    var leases: LeaseIssuer { get }
    /// Leases up to `limit` due items.
    func claim(limit: Int) async throws -> [Item]
    /// Works one item to its next durable state, or hands that last write to `settle`. Never throws:
    /// failures are recorded on the item.
    func process(_ item: Item) async
    /// Returns once every write that `process` handed on is committed; before leases are given back.
    func settle() async
    /// Gives back every lease this stage of this instance still holds (after it stopped).
    func releaseLeases() async throws
    /// How long until this stage's next item falls due, where it can tell (nil: it cannot); may ask
    /// the store. Read when the loop sets its timer.
    func untilNextDue() async -> Duration?
    /// How long until the soonest item that this instance's own items scheduled falls due, from
    /// memory (nil: none). Read after every item, so it must not ask the store.
    func untilNextScheduled() -> Duration?
}

extension PipelineStage {
    public func settle() async {}
    public func untilNextDue() async -> Duration? { nil }
    public func untilNextScheduled() -> Duration? { nil }
}

/// Runs a stage as a service: keeps up to `concurrency` items in flight, claims more once half the
/// slots are free, and otherwise idles until woken, until the next item falls due or until
/// `idleInterval` passes. A slow item holds one slot, never the whole stage. A claim that fails (the
/// database is away) is retried with backoff.
///
/// On graceful shutdown it stops claiming and lets in-flight items finish; on cancellation (a failed
/// start, a second signal) it stops at once. Either way it then gives back the leases *this stage*
/// still holds: the other stages may still be finishing theirs.
public struct WorkerLoop<Stage: PipelineStage>: Service, CustomStringConvertible {
    let stage: Stage
    let concurrency: Int
    let idleInterval: Duration
    let wake: WakeSignal
    let logger: Logger
    let claimFailures: FailureBackoff

    public init(stage: Stage, concurrency: Int, idleInterval: Duration, wake: WakeSignal, logger: Logger) {
        self.stage = stage
        self.concurrency = concurrency
        self.idleInterval = idleInterval
        self.wake = wake
        self.logger = logger
        claimFailures = FailureBackoff(component: stage.name, logger: logger)
    }

    public var description: String { "WorkerLoop(\(stage.name), concurrency \(concurrency))" }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await runUntilShutdown()
        } onGracefulShutdown: {
            wake.signal()
        }
        // Cancelled (a failed start, a drain cut short): the store call would be cancelled too;
        // whatever this stage still holds is taken over when its leases expire.
        if !Task.isCancelled {
            await stage.settle()
            do {
                try await stage.releaseLeases()
            } catch {
                logger.error("could not release leases", metadata: ["worker": "\(stage.name)", "error": "\(error)"])
            }
        }
        logger.debug("worker stopped", metadata: ["worker": "\(stage.name)"])
    }

    private enum Completion { case item, timer }

    private func runUntilShutdown() async {
        await withTaskGroup(of: Completion.self) { group in
            var inFlight = 0
            /// When the running timer ends, if one runs.
            var timerDeadline: ContinuousClock.Instant?
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                // Under load, claim in batches (each claim is a write transaction): once half the slots
                // are free, not each time one item finishes.
                var claimStarted: ContinuousClock.Instant?
                if inFlight <= concurrency / 2 {
                    claimStarted = .now
                    do {
                        for item in try await stage.claim(limit: concurrency - inFlight) {
                            inFlight += 1
                            group.addTask {
                                await stage.process(item)
                                return .item
                            }
                        }
                        claimFailures.succeeded()
                    } catch {
                        guard !Task.isCancelled else { break }
                        await FailureBackoff.pause(claimFailures.failed("claim failed", error: error))
                        continue
                    }
                }
                if timerDeadline == nil {
                    let wait = await timerWait(afterClaimAt: claimStarted)
                    timerDeadline = .now + wait
                    group.addTask {
                        await wake.wait(upTo: wait)
                        return .timer
                    }
                }
                switch await group.next() {
                case .item?:
                    inFlight -= 1
                    // The item may have scheduled its next step (a poll) before the running timer ends:
                    // end that timer, so that the next one is set for it.
                    if let deadline = timerDeadline, let next = stage.untilNextScheduled(), next > .zero, .now + next < deadline {
                        wake.signal()
                    }
                case .timer?: timerDeadline = nil
                case nil: return
                }
            }
            // Let in-flight items finish; the timer ends with the shutdown signal.
            wake.signal()
            for await _ in group {}
        }
    }

    /// Until the next item falls due, if that is sooner than the idle interval, so that it is not late
    /// by up to an idle interval. An item that fell due after this round's claim began is claimed at
    /// once; one that was due before and that the claim did not take (budget, circuit) waits the idle
    /// interval instead of spinning.
    private func timerWait(afterClaimAt claimStarted: ContinuousClock.Instant?) async -> Duration {
        guard let next = await stage.untilNextDue() else { return idleInterval }
        if next > .zero { return min(next, idleInterval) }
        // Read after the answer, `now + next` errs late: at worst one more claim, never a missed item.
        if let claimStarted, .now + next > claimStarted { return .zero }
        return idleInterval
    }
}
