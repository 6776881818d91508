import Foundation
import Logging
import Metrics
import Tracing

/// Follows running tasks on the upstream until they end, then announces the outcome.
public struct Poller: PipelineStage {
    let context: UpstreamStageContext
    public let leases: LeaseIssuer
    /// The soonest next poll this instance's polls scheduled: after each poll the loop reads it, not the store.
    let scheduled = SoonestDue()

    public init(context: UpstreamStageContext) {
        self.context = context
        leases = context.leases(for: "poller")
    }

    public var name: String { "poller" }

    public func claim(limit: Int) async throws -> [Claimed] {
        try await context.claim(.poll, limit: limit, leases: leases)
    }

    public func releaseLeases() async throws {
        try await context.store.releaseTaskLeases(ownerPrefix: leases.ownerPrefix)
    }

    public func untilNextDue() async -> Duration? {
        let now = context.clock.now()
        guard let due = try? await context.store.nextPollDue(now: now) else { return nil }
        return .seconds(due.timeIntervalSince(now))
    }

    public func untilNextScheduled() -> Duration? {
        let now = context.clock.now()
        return scheduled.first(after: now).map { .seconds($0.timeIntervalSince(now)) }
    }

    public func process(_ claimed: Claimed) async {
        var task = claimed.task
        let lease = claimed.lease
        guard let upstreamID = task.upstreamTaskID else { return }
        do {
            if try await context.expireIfOverdue(&task, lease: lease) { return }
            guard let key = try await context.keys.secret(of: task.upstreamKey) else {
                context.logger.error("the task's upstream key is gone; polls wait for it", metadata: ["task_id": "\(task.id)", "key": "\(task.keyName)"])
                try await handle(.transient(status: nil, message: "no upstream key named \(task.keyName)", retryAfter: nil), task: &task, lease: lease)
                return
            }
            let view: UpstreamTaskView
            do {
                view = try await TaskTrace.span("veo.poll", continuing: task.traceParent, taskID: task.id) { span throws(UpstreamError) in
                    let view = try await context.upstream.task(id: upstreamID, key: key)
                    span.attributes["veo_relay.upstream_status"] = view.status
                    span.attributes["veo_relay.progress"] = view.progress
                    return view
                }
            } catch {
                Counter(label: "veo_relay_polls_total", dimensions: [("outcome", "error")]).increment()
                try await handle(error, task: &task, lease: lease)
                return
            }
            Counter(label: "veo_relay_polls_total", dimensions: [("outcome", "ok")]).increment()
            let now = context.clock.now()
            var event = task.observe(view, at: now, nextPollAt: context.schedule.nextPoll(for: task, observed: view, now: now))
            if task.state == .succeeded, let submittedAt = task.submittedAt {
                context.schedule.estimates.record(view.actualTime ?? now.timeIntervalSince(submittedAt), for: task.request.model)
            }
            if task.state.isTerminal {
                context.logger.info("task ended", metadata: ["task_id": "\(task.id)", "status": "\(view.status)"])
            }
            if task.state == .succeeded, context.storerWake != nil {
                task.beginStoring(at: now) // announced by the storer, with the copies
                event = nil
            }
            if task.state.isTerminal || task.state == .storing {
                try await context.persist { [task, event] in try await context.transitions.save(task, lease: lease, announcing: event) }
                if task.state == .storing { context.storerWake?.signal() }
            } else {
                try await context.transitions.save(task, lease: lease, announcing: event)
                if let next = task.nextRunAt { scheduled.add(next, after: now) }
            }
        } catch {
            context.logger.error("poll step failed", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
        }
    }

    /// A failed poll is retried with backoff, except that a task the upstream keeps answering 404
    /// for, or keeps answering about in a shape the relay cannot read, ends after a bounded number
    /// of consecutive failures instead of waiting for its deadline.
    private func handle(_ error: UpstreamError, task: inout RelayTask, lease: Lease) async throws {
        let now = context.clock.now()
        let failures = task.failures + 1
        if case .accountRefused(let status, let message) = error {
            // The key's fault, not the task's: no failure counted, and the next poll when the key is next tried.
            let next = try await context.account.refused(key: task.keyName, status: status, message: message)
            task.nextRunAt = max(next, now.addingTimeInterval(context.configuration.polling.floor))
            try await context.transitions.record(task, lease: lease, keepLease: false)
            return
        }
        switch error {
        case .notFound(let message) where failures >= context.configuration.notFoundLimit:
            let type = task.fail(.upstreamTaskNotFound, message: "The upstream no longer knows this task: \(message)", at: now)
            try await context.transitions.save(task, lease: lease, announcing: type)
            return
        case .unreadable(let status, let answer):
            Counter(label: "veo_relay_upstream_unreadable_total", dimensions: [("endpoint", "task")]).increment()
            guard failures < context.configuration.unreadableLimit else {
                let type = task.fail(.upstreamUnreadable, message: """
                    The upstream's answers about this task could not be read \(failures) times in a row \
                    (last: HTTP \(status), \(answer.prefix(500))).
                    """, at: now)
                try await context.transitions.save(task, lease: lease, announcing: type)
                return
            }
        default:
            break
        }
        context.logger.warning("poll failed", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
        let retryAfter: TimeInterval? = if case .transient(_, _, let value) = error { value } else { nil }
        let delay = context.configuration.upstreamBackoff.delay(failures: task.failures + 1, retryAfter: retryAfter)
        task.retry(at: now.addingTimeInterval(max(delay, context.configuration.polling.floor)))
        try await context.transitions.record(task, lease: lease, keepLease: false)
    }
}
