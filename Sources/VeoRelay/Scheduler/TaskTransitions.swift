import Foundation
import Metrics

/// Saves a task transition together with the event it calls for in one transaction, then wakes the
/// dispatcher (the task's callback or the client's endpoints may take it) and this instance's streams.
///
/// Every stage's transitions go through one group commit: transitions arriving while a transaction
/// is being written share the next one (one commit, one sync), and each caller returns only once its
/// own is durable, so a task never moves on (a request never leaves) before its state is on disk.
public struct TaskTransitions: Sendable {
    let clock: any WallClock
    let wakes: EventWakes
    let group: GroupCommit<TaskTransition, Bool>

    public init(store: any TaskQueue, clock: any WallClock, dispatcherWake: WakeSignal, streamWake: WakeSignal = WakeSignal()) {
        self.clock = clock
        wakes = EventWakes(dispatcher: dispatcherWake, streams: streamWake)
        group = GroupCommit { batch in try await store.save(batch) }
    }

    public func save(_ task: RelayTask, lease: Lease, announcing type: WebhookEventType?) async throws {
        let caused = try type.map { try NewEvent($0, of: task, at: clock.now()) }
        try await record(task, lease: lease, keepLease: false, event: caused)
        UsageMetrics.ended(task)
        if let caused { wakes.announced(caused) }
    }

    /// Writes a transition (with its event, if any) in the next group commit; throws
    /// `StoreError.leaseLost` if its lease was lost.
    public func record(_ task: RelayTask, lease: Lease, keepLease: Bool, event: NewEvent? = nil) async throws {
        guard try await group.submit(TaskTransition(task, lease: lease, keepLease: keepLease, event: event)) else {
            throw StoreError.leaseLost(task.id)
        }
    }
}

/// Who hears of a new event in this process: the dispatcher (to deliver it) and the event streams.
struct EventWakes: Sendable {
    let dispatcher: WakeSignal
    let streams: WakeSignal

    func announced(_ event: NewEvent) {
        Counter(label: "veo_relay_events_total", dimensions: [("type", event.type)]).increment()
        dispatcher.signal()
        streams.signal()
    }
}

extension NewEvent {
    /// A task's event of `type`, its payload the task as it is now; delivered to the task's callback
    /// if the task subscribed to the type.
    init(_ type: WebhookEventType, of task: RelayTask, at now: Date) throws {
        self.init(type: type, payload: try JSONCoding.encode(WebhookPayload(type: type, task: task, at: now)), createdAt: now,
                  webhook: task.callbackURL != nil && task.callbackEvents.contains(type))
    }
}
