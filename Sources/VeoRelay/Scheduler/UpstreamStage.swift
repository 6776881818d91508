import Foundation
import Logging
import Synchronization

/// What the submitter and the poller share: the store, the upstream, its keys and its request
/// allowance, time, the poll schedule and the transitions' group commit.
public struct UpstreamStageContext: Sendable {
    let store: any TaskQueue & UpstreamAccounts
    let upstream: UpstreamClient
    let keys: UpstreamKeyRing
    let gate: UpstreamGate
    let clock: any WallClock
    /// This relay instance, for the stages' lease owners.
    let instance: String
    let schedule: PollSchedule
    let configuration: EngineConfiguration
    let transitions: TaskTransitions
    let logger: Logger
    /// Failed writes of upstream answers, logged at most once a second across tasks.
    let answerWrites: FailureBackoff
    /// With `--store-videos`: a task that succeeded upstream goes to the storer, woken by this.
    let storerWake: WakeSignal?
    /// Upstream answers held in memory that the database has not taken yet.
    let heldAnswers = HeldAnswers()
    /// Whether each upstream key's account takes work (shared by every relay on the database).
    let account: AccountStanding

    public init(store: any TaskQueue & UpstreamAccounts, upstream: UpstreamClient, keys: UpstreamKeyRing, gate: UpstreamGate, clock: any WallClock,
                instance: String, schedule: PollSchedule, configuration: EngineConfiguration, transitions: TaskTransitions, logger: Logger,
                storerWake: WakeSignal? = nil) {
        self.store = store
        self.upstream = upstream
        self.keys = keys
        self.gate = gate
        self.clock = clock
        self.instance = instance
        self.schedule = schedule
        self.configuration = configuration
        self.transitions = transitions
        self.logger = logger
        self.storerWake = storerWake
        account = AccountStanding(store: store, clock: clock, logger: logger)
        answerWrites = FailureBackoff(component: "answer-write", logger: logger, maximum: .seconds(5))
    }

    /// Writes an upstream answer the relay holds (a paid submission, a finished task) until it is
    /// written, or its lease is truly lost to another worker (`StoreError`), or the stage is
    /// cancelled: a database fault shorter than the lease must not turn a known answer into an
    /// unknown one. Graceful shutdown does not stop it; the drain timeout's cancellation does.
    /// While any answer waits, no new submission is claimed (see `claim`).
    func persist<T>(_ write: () async throws -> T) async throws -> T {
        var holding = false
        defer { if holding { heldAnswers.release() } }
        while true {
            do {
                let value = try await write()
                answerWrites.succeeded()
                return value
            } catch let error as StoreError {
                throw error
            } catch {
                try Task.checkCancellation()
                if !holding {
                    holding = true
                    heldAnswers.hold()
                }
                try await Task.sleep(for: answerWrites.failed("an upstream answer could not be written yet; retrying", error: error))
            }
        }
    }

    func leases(for stage: String) -> LeaseIssuer {
        LeaseIssuer(instance: instance, stage: stage, duration: configuration.leaseDuration, clock: clock)
    }

    /// Claims as many due tasks as the upstream allowance allows right now, most overdue first. No new
    /// submission while an answer this relay holds is not written: one back from a partition writes
    /// what it knows before it pays for anything more.
    func claim(_ work: TaskWork, limit: Int, leases: LeaseIssuer) async throws -> [Claimed] {
        if case .submission = work, heldAnswers.any { return [] }
        let granted = gate.take(upTo: limit)
        guard granted > 0 else { return [] }
        let lease = leases.next()
        var claimed: [Claimed] = []
        do {
            if case .submission = work {
                claimed = try await claimSubmissions(granted, lease: lease)
            } else {
                let now = clock.now()
                claimed = try await store.claimTasks(work, now: now, limit: granted, lease: lease, ownersSilentSince: now)
                    .map { Claimed(task: $0, lease: lease) }
            }
        } catch where claimed.isEmpty {
            gate.refund(granted) // nothing was claimed, so no request will use the allowance
            throw error
        }
        gate.refund(granted - claimed.count)
        return claimed
    }

    /// The submission claim, one per enabled key, each for its share of the allowance (within its own
    /// rate and, in the database, its `max_in_flight`); the first also takes abandoned `submitting`
    /// tasks. A held key's claim finds no queued task; a key whose claim found none takes its probe when
    /// one is due (one queued task, whatever the hold). A key whose claim found some saw no hold, and
    /// reads nothing more.
    private func claimSubmissions(_ granted: Int, lease: Lease) async throws -> [Claimed] {
        let now = clock.now()
        let silentSince = now.addingTimeInterval(-configuration.ownerSilenceLimit)
        let enabled = try await keys.enabled()
        var claimed: [Claimed] = []
        var idle: [UpstreamKey] = []
        for (index, key) in enabled.enumerated() {
            let left = granted - claimed.count
            guard left > 0 else { break }
            let share = keys.take(key, upTo: (left + enabled.count - index - 1) / (enabled.count - index))
            guard share > 0 else { continue }
            let tasks: [RelayTask]
            do {
                tasks = try await store.claimTasks(.submission(KeyShare(key)), now: now, limit: share, lease: lease, ownersSilentSince: silentSince)
            } catch where !claimed.isEmpty {
                // What earlier keys claimed is leased to this relay: it is worked, not dropped with the error.
                keys.refund(key, share)
                logger.warning("a submission claim failed", metadata: ["key": "\(key.name)", "error": "\(error)"])
                return claimed
            } catch {
                keys.refund(key, share)
                throw error
            }
            keys.refund(key, share - tasks.count)
            claimed += tasks.map { Claimed(task: $0, lease: $0.state == .submitting ? lease.recovering : lease) }
            if !tasks.contains(where: { $0.state == .queued }) { idle.append(key) }
        }
        guard !idle.isEmpty, claimed.count < granted else { return claimed }
        do {
            for name in try await account.takeDueProbes(among: Set(idle.map(\.name))) where claimed.count < granted {
                guard let key = idle.first(where: { $0.name == name }) else { continue }
                claimed += try await store.claimTasks(.accountProbe(KeyShare(key)), now: now, limit: 1, lease: lease, ownersSilentSince: now)
                    .map { Claimed(task: $0, lease: lease, accountProbe: true) }
            }
        } catch {
            logger.warning("could not take an upstream key's probe", metadata: ["error": "\(error)"])
        }
        return claimed
    }

    /// Ends a task that ran past its deadline, without calling the upstream. True if it did.
    func expireIfOverdue(_ task: inout RelayTask, lease: Lease) async throws -> Bool {
        let now = clock.now()
        let deadline = configuration.deadlines.deadline(for: task, estimates: schedule.estimates)
        guard now > deadline else { return false }
        gate.refund(1)
        let type = task.fail(.timeout, message: "The task did not finish within \(deadline.unixSeconds - task.createdAt.unixSeconds) s.",
                             at: now)
        logger.warning("task timed out", metadata: ["task_id": "\(task.id)"])
        try await transitions.save(task, lease: lease, announcing: type)
        return true
    }
}

/// How many upstream answers this relay holds that the database has not taken yet.
final class HeldAnswers: Sendable {
    private let count = Mutex(0)

    func hold() { count.withLock { $0 += 1 } }
    func release() { count.withLock { $0 -= 1 } }
    var any: Bool { count.withLock { $0 > 0 } }
}
