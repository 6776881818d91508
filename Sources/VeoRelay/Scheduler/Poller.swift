import Foundation
import Logging
import Metrics

/// Follows running tasks on the upstream until they end, then announces the outcome.
public struct Poller: PipelineStage {
    let context: UpstreamStageContext

    public init(context: UpstreamStageContext) {
        self.context = context
    }

    public var name: String { "poller" }

    public func claim(limit: Int) async throws -> [Claimed] {
        try await context.claim(.poll, limit: limit)
    }

    public func process(_ claimed: Claimed) async {
        var task = claimed.task
        let lease = claimed.lease
        guard let upstreamID = task.upstreamTaskID else { return }
        do {
            if try await context.expireIfOverdue(&task, lease: lease) { return }
            let view: UpstreamTaskView
            do {
                view = try await context.upstream.task(id: upstreamID)
            } catch {
                Counter(label: "veo_relay_polls_total", dimensions: [("outcome", "error")]).increment()
                try await handle(error, task: &task, lease: lease)
                return
            }
            Counter(label: "veo_relay_polls_total", dimensions: [("outcome", "ok")]).increment()
            let now = context.clock.now()
            let event = task.observe(view, at: now, nextPollAt: context.schedule.nextPoll(for: task, observed: view, now: now))
            if task.state == .succeeded, let submittedAt = task.submittedAt {
                context.schedule.estimates.record(view.actualTime ?? now.timeIntervalSince(submittedAt), for: task.request.model)
            }
            if task.state.isTerminal {
                context.logger.info("task ended", metadata: ["task": "\(task.id)", "status": "\(view.status)"])
            }
            try await context.events.save(task, lease: lease, announcing: event)
        } catch {
            context.logger.error("poll step failed", metadata: ["task": "\(task.id)", "error": "\(error)"])
        }
    }

    private func handle(_ error: UpstreamError, task: inout RelayTask, lease: Lease) async throws {
        let now = context.clock.now()
        if case .notFound(let message) = error, task.failures + 1 >= context.configuration.notFoundLimit {
            let type = task.fail(.upstreamTaskNotFound, message: "The upstream no longer knows this task: \(message)", at: now)
            try await context.events.save(task, lease: lease, announcing: type)
            return
        }
        context.logger.warning("poll failed", metadata: ["task": "\(task.id)", "error": "\(error)"])
        let retryAfter: TimeInterval? = if case .transient(_, _, let value) = error { value } else { nil }
        let delay = context.configuration.upstreamBackoff.delay(failures: task.failures + 1, retryAfter: retryAfter)
        task.retry(at: now.addingTimeInterval(max(delay, context.configuration.polling.floor)))
        try await context.store.save(task, lease: lease, keepLease: false, event: nil)
    }
}
