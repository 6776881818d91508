import Foundation
import Logging
import Metrics
import Tracing

/// Sends queued tasks upstream, exactly once. The task is marked `submitting` in its own transaction
/// before the request leaves, so a relay that dies mid-request leaves a trace: once its owner is known
/// to be gone (`InstanceRegistry`), a claim finds the task `submitting` and fails it as
/// `submission_outcome_unknown` instead of paying for it twice. A live owner's answer, however late
/// (a partition, a failover), is never judged unknown.
public struct Submitter: PipelineStage {
    let context: UpstreamStageContext
    public let leases: LeaseIssuer

    public init(context: UpstreamStageContext) {
        self.context = context
        leases = context.leases(for: "submitter")
    }

    public var name: String { "submitter" }

    public func claim(limit: Int) async throws -> [Claimed] {
        try await context.claim(.submission(), limit: limit, leases: leases)
    }

    public func releaseLeases() async throws {
        try await context.store.releaseTaskLeases(ownerPrefix: leases.ownerPrefix)
    }

    public func process(_ claimed: Claimed) async {
        var task = claimed.task
        let lease = claimed.lease
        do {
            if task.state == .submitting {
                context.gate.refund(1)
                let type = task.fail(.submissionOutcomeUnknown,
                                     message: "The relay stopped while submitting; the upstream may have accepted the task. Resubmit deliberately if needed.",
                                     at: context.clock.now())
                try await context.transitions.save(task, lease: lease, announcing: type)
                return
            }
            if try await context.expireIfOverdue(&task, lease: lease) { return }
            let queued = task
            guard let key = try await context.keys.secret(of: task.upstreamKey) else {
                // Its key was removed since the claim: the next claim gives it another.
                context.gate.refund(1)
                try await context.transitions.record(queued, lease: lease, keepLease: false)
                return
            }
            task.beginSubmission()
            do {
                try await context.transitions.record(task, lease: lease, keepLease: true)
            } catch StoreError.leaseLost {
                // Cancelled by its client since the claim (or taken over by another instance): not ours to send.
                context.gate.refund(1)
                context.logger.info("task taken back before submission", metadata: ["task_id": "\(task.id)"])
                return
            } catch {
                // The mark may have committed with its answer lost: nothing was sent, so the task goes back
                // to the queue, not to an unknown outcome (its live owner would hold it `submitting` forever).
                context.gate.refund(1)
                try await context.persist { try await context.transitions.record(queued, lease: lease, keepLease: false) }
                context.logger.warning("task put back: its submission mark was not confirmed, and nothing was sent",
                                       metadata: ["task_id": "\(task.id)", "error": "\(error)"])
                return
            }
            let submission: UpstreamSubmission
            do {
                submission = try await TaskTrace.span("veo.submit", continuing: task.traceParent, taskID: task.id) { [request = task.request] span throws(UpstreamError) in
                    let submission = try await context.upstream.submit(request, key: key)
                    span.attributes["veo_relay.upstream_task_id"] = submission.taskID
                    return submission
                }
            } catch {
                try await handle(error, task: &task, queued: queued, lease: lease)
                return
            }
            Counter(label: "veo_relay_submissions_total", dimensions: [("outcome", "submitted")]).increment()
            if claimed.accountProbe {
                do { try await context.account.probeAccepted(key: task.keyName) } catch {
                    context.logger.warning("could not end the upstream key's hold; the next probe will", metadata: ["error": "\(error)"])
                }
            }
            let now = context.clock.now()
            task.submitted(submission, at: now, firstPollAt: context.schedule.firstPoll(for: task, submittedAt: now))
            do {
                try await context.persist { [task] in try await context.transitions.save(task, lease: lease, announcing: .taskSubmitted) }
            } catch StoreError.leaseLost {
                // The process stalled past its lease with the request out; another worker may have
                // judged the outcome unknown meanwhile. The paid job must still be traceable.
                let recorded = try await context.persist { try await context.store.recordLateSubmission(taskID: task.id, submission) }
                if !recorded, try await context.store.task(id: task.id, scope: .allClients)?.upstreamTaskID == submission.taskID {
                    // An earlier try committed, and only its answer was lost on the way back.
                    context.logger.info("submitted", metadata: ["task_id": "\(task.id)", "upstream_task_id": "\(submission.taskID)"])
                    return
                }
                context.logger.error("submission answered after its lease expired", metadata: [
                    "task_id": "\(task.id)", "upstream_task_id": "\(submission.taskID)", "recorded": "\(recorded)"])
                return
            }
            context.logger.info("submitted", metadata: ["task_id": "\(task.id)", "upstream_task_id": "\(submission.taskID)"])
        } catch {
            context.logger.error("submission step failed", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
        }
    }

    /// An account refusal: nothing was created upstream, so the task goes back to the queue as it was
    /// (its place and its failures unchanged) and every relay's submissions with its key hold, unless
    /// it has waited past `--account-hold-limit`.
    private func holdForAccount(_ queued: RelayTask, lease: Lease, status: Int, message: String) async throws {
        try await context.account.refused(key: queued.keyName, status: status, message: message)
        let now = context.clock.now()
        if now.timeIntervalSince(queued.createdAt) > context.configuration.accountHoldLimit {
            var task = queued
            task.beginSubmission()
            let type = task.fail(.upstreamAccountUnavailable, message: """
                The upstream account refused work (HTTP \(status): \(message)) for longer than the relay holds a task \
                (\(Int(context.configuration.accountHoldLimit)) s).
                """, at: now)
            try await context.transitions.save(task, lease: lease, announcing: type)
            return
        }
        try await context.persist { try await context.transitions.record(queued, lease: lease, keepLease: false) }
    }

    /// `queued`: the task as it was before its `submitting` mark.
    private func handle(_ error: UpstreamError, task: inout RelayTask, queued: RelayTask, lease: Lease) async throws {
        Counter(label: "veo_relay_submissions_total", dimensions: [("outcome", Self.outcome(error))]).increment()
        if case .accountRefused(let status, let message) = error {
            // The account's refusal, not this task's failure: logged once per hold (`AccountStanding`), not per task.
            try await holdForAccount(queued, lease: lease, status: status, message: message)
            return
        }
        context.logger.warning("submission failed", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
        let now = context.clock.now()
        switch error {
        case .transient(_, _, let retryAfter):
            let delay = context.configuration.upstreamBackoff.delay(failures: task.failures + 1, retryAfter: retryAfter)
            task.retry(at: now.addingTimeInterval(delay))
            try await context.transitions.record(task, lease: lease, keepLease: false)
        case .rejected(let status, let message):
            let type = task.fail(.upstreamRejected, message: "The upstream rejected the request (HTTP \(status)): \(message)", at: now)
            try await context.transitions.save(task, lease: lease, announcing: type)
        case .notFound(let message):
            let type = task.fail(.upstreamRejected, message: "The upstream rejected the request (HTTP 404): \(message)", at: now)
            try await context.transitions.save(task, lease: lease, announcing: type)
        case .accountRefused:
            return // held above
        case .outcomeUnknown, .unreadable:
            task.submissionAnswer = error.answer
            let type = task.fail(.submissionOutcomeUnknown,
                                 message: "No usable answer from the upstream after the request was sent (\(error)); it may have been accepted.",
                                 at: now)
            try await context.transitions.save(task, lease: lease, announcing: type)
        }
    }

    private static func outcome(_ error: UpstreamError) -> String {
        switch error {
        case .transient: "retried"
        case .rejected, .notFound: "rejected"
        case .accountRefused: "account_refused"
        case .outcomeUnknown, .unreadable: "outcome_unknown"
        }
    }
}
