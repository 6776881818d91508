import Foundation
import Metrics

/// Saves a task transition together with the event it calls for in one transaction, then wakes
/// the dispatcher (the task's callback or the client's endpoints may take it) and this instance's streams.
///
/// Every stage's transitions go through one group commit: transitions arriving while a transaction
/// is being written share the next one (one commit, one sync), and each caller returns only once its
/// own is durable, so a task never moves on (a request never leaves) before its state is on disk.
public struct EventAnnouncer: Sendable {
    let store: any TaskQueue
    let clock: any WallClock
    let dispatcherWake: WakeSignal
    let streamWake: WakeSignal
    let transitions: GroupCommit<TaskTransition, Bool>

    public init(store: any TaskQueue, clock: any WallClock, dispatcherWake: WakeSignal, streamWake: WakeSignal = WakeSignal()) {
        self.store = store
        self.clock = clock
        self.dispatcherWake = dispatcherWake
        self.streamWake = streamWake
        transitions = GroupCommit { batch in try await store.save(batch) }
    }

    public func save(_ task: RelayTask, lease: Lease, announcing type: WebhookEventType?) async throws {
        let caused = try type.map { try self.event($0, of: task) }
        try await record(task, lease: lease, keepLease: false, event: caused)
        UsageMetrics.ended(task)
        if let caused { announced(caused) }
    }

    /// Writes a transition (with its event, if any) in the next group commit; throws
    /// `StoreError.leaseLost` if its lease was lost.
    public func record(_ task: RelayTask, lease: Lease, keepLease: Bool, event: NewEvent? = nil) async throws {
        guard try await transitions.submit(TaskTransition(task, lease: lease, keepLease: keepLease, event: event)) else {
            throw StoreError.leaseLost(task.id)
        }
    }

    /// Cancels the task if it is still queued (see `TaskQueue.cancel`). A submission refused for now
    /// (429, 503) puts its task back in the queue, so a cancel that lost that race looks again.
    public func cancel(taskID: String, scope: ClientScope) async throws -> CancelOutcome {
        for _ in 0..<3 {
            guard let task = try await store.task(id: taskID, scope: scope) else { return .notFound }
            switch task.state {
            case .queued: if try await cancel(task) { return .cancelled }
            case .cancelled: return .alreadyCancelled
            case .succeeded, .failed: return .finished(task.state)
            case .submitting, .running, .storing: return .alreadySubmitted
            }
        }
        return .alreadySubmitted
    }

    /// Ends `task` as cancelled with its event; false if it was no longer queued.
    private func cancel(_ task: RelayTask) async throws -> Bool {
        var cancelled = task
        let type = cancelled.cancel(at: clock.now())
        let event = try event(type, of: cancelled)
        guard try await store.cancel(cancelled, event: event) else { return false }
        Counter(label: "veo_relay_tasks_cancelled_total").increment()
        UsageMetrics.ended(cancelled)
        announced(event)
        return true
    }

    private func event(_ type: WebhookEventType, of task: RelayTask) throws -> NewEvent {
        let now = clock.now()
        let payload = try JSONCoding.encode(WebhookPayload(type: type, task: task, at: now))
        return NewEvent(type: type, payload: payload, createdAt: now, webhook: task.callbackURL != nil && task.callbackEvents.contains(type))
    }

    private func announced(_ event: NewEvent) {
        Counter(label: "veo_relay_events_total", dimensions: [("type", event.type)]).increment()
        dispatcherWake.signal()
        streamWake.signal()
    }
}

/// A task together with the lease under which a worker may change it.
public struct Claimed: Sendable {
    public var task: RelayTask
    public var lease: Lease
}

/// Leases for one stage of one relay instance. Each claim gets its own owner token,
/// `<instance>/<stage>/<claim id>`, so a worker whose lease expired cannot write over the row even if
/// its own instance re-claimed it, and a stage that stops gives back only its own leases.
public struct LeaseIssuer: Sendable {
    public let ownerPrefix: String
    let duration: TimeInterval
    let clock: any WallClock

    public init(instance: String, stage: String, duration: TimeInterval, clock: any WallClock) {
        ownerPrefix = "\(instance)/\(stage)/"
        self.duration = duration
        self.clock = clock
    }

    public func next() -> Lease {
        Lease(owner: ownerPrefix + Identifier.make(prefix: ""), expiresAt: clock.now().addingTimeInterval(duration))
    }
}

/// What a cancel found.
public enum CancelOutcome: Sendable, Equatable {
    case cancelled
    case alreadyCancelled
    /// Submitted upstream: paid, and followed to its end.
    case alreadySubmitted
    /// It had ended (succeeded or failed).
    case finished(TaskState)
    case notFound
}
