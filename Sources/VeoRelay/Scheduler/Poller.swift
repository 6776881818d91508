import Foundation
import Logging
import Metrics

/// Follows running tasks on the upstream until they end, then announces the outcome.
public struct Poller: PipelineStage {
    let store: any Store
    let upstream: UpstreamClient
    let clock: any WallClock
    let leases: LeaseIssuer
    let configuration: EngineConfiguration
    let events: EventAnnouncer
    let logger: Logger

    public var name: String { "poller" }

    public func claim(limit: Int) async throws -> [Claimed] {
        let lease = leases.next()
        return try await store.claimTasks(.poll, now: clock.now(), limit: limit, lease: lease).map { Claimed(task: $0, lease: lease) }
    }

    public func process(_ claimed: Claimed) async {
        var task = claimed.task
        let lease = claimed.lease
        guard let upstreamID = task.upstreamTaskID else { return }
        do {
            let view: UpstreamTaskView
            do {
                view = try await upstream.task(id: upstreamID)
            } catch {
                Counter(label: "veo_relay_polls_total", dimensions: [("outcome", "error")]).increment()
                try await handle(error, task: &task, lease: lease)
                return
            }
            Counter(label: "veo_relay_polls_total", dimensions: [("outcome", "ok")]).increment()
            let now = clock.now()
            let next = PollSchedule(interval: configuration.pollInterval).nextPoll(for: task, observed: view, now: now)
            let event = task.observe(view, at: now, nextPollAt: next)
            if task.state.isTerminal {
                logger.info("task ended", metadata: ["task": "\(task.id)", "status": "\(view.status)"])
            }
            try await events.save(task, lease: lease, announcing: event)
        } catch {
            logger.error("poll step failed", metadata: ["task": "\(task.id)", "error": "\(error)"])
        }
    }

    private func handle(_ error: UpstreamError, task: inout RelayTask, lease: Lease) async throws {
        let now = clock.now()
        if case .notFound(let message) = error, task.failures + 1 >= configuration.notFoundLimit {
            let type = task.fail(.upstreamTaskNotFound, message: "The upstream no longer knows this task: \(message)", at: now)
            try await events.save(task, lease: lease, announcing: type)
            return
        }
        logger.warning("poll failed", metadata: ["task": "\(task.id)", "error": "\(error)"])
        let retryAfter: TimeInterval? = if case .transient(_, _, let value) = error { value } else { nil }
        let delay = configuration.upstreamBackoff.delay(failures: task.failures + 1, retryAfter: retryAfter)
        task.retry(at: now.addingTimeInterval(max(delay, configuration.pollInterval)))
        try await store.save(task, lease: lease, keepLease: false, event: nil)
    }
}
