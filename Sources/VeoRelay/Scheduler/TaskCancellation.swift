import Foundation
import Metrics

/// Takes back a task its client (or an operator) no longer wants, if it has not been submitted: it ends
/// cancelled, with its event, and is never paid (see `TaskQueue.cancel`).
public struct TaskCancellation: Sendable {
    let store: any TaskQueue
    let clock: any WallClock
    /// Nil where no dispatcher or stream runs in this process (the shell): the relays find the event
    /// in the database at their next look.
    let wakes: EventWakes?

    public init(store: any TaskQueue, clock: any WallClock) {
        self.init(store: store, clock: clock, wakes: nil)
    }

    init(store: any TaskQueue, clock: any WallClock, wakes: EventWakes?) {
        self.store = store
        self.clock = clock
        self.wakes = wakes
    }

    /// Cancels the task if it is still queued. A submission refused for now (429, 503) puts its task
    /// back in the queue, so a cancel that lost that race looks again.
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
        let now = clock.now()
        let type = cancelled.cancel(at: now)
        let event = try NewEvent(type, of: cancelled, at: now)
        guard try await store.cancel(cancelled, event: event) else { return false }
        Counter(label: "veo_relay_tasks_cancelled_total").increment()
        UsageMetrics.ended(cancelled)
        wakes?.announced(event)
        return true
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
