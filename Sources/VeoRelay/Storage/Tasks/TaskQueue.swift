import Foundation

/// Tasks from intake to their last transition: inserted once (idempotently), claimed by due time
/// under a lease, and moved on only by the lease's holder.
public protocol TaskQueue: Sendable {
    /// Commits new tasks in one transaction, one outcome each; with an idempotency key, a repeat of
    /// the same request returns the first task instead (and is not counted again). A task of a client
    /// with a budget is checked against it and counted in the same transaction, after the tasks
    /// before it in the batch, so instances sharing the database never admit past a limit. Every
    /// task inserted is counted in the usage aggregate. Throws (committing none) on a duplicate id.
    func insert(_ batch: [TaskInsertion]) async throws -> [InsertOutcome]
    /// A task as `scope` may see it: another client's task reads as absent.
    func task(id: String, scope: ClientScope) async throws -> RelayTask?
    /// Tasks newest first, filtered (operators).
    func tasks(_ query: TaskQuery) async throws -> [RelayTask]

    /// Leases up to `limit` due tasks, most overdue first. A `submitting` task whose lease expired is
    /// taken (to be declared outcome-unknown) only when its owner is not alive: no incarnation that is
    /// not declared stopped and has had a heartbeat since `ownersSilentSince` holds it (`InstanceRegistry`).
    func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease, ownersSilentSince: Date) async throws -> [RelayTask]
    /// When the earliest running task that nobody holds is due for its next poll; nil when none is running.
    func nextPollDue(now: Date) async throws -> Date?
    /// Writes task transitions held under their leases, each with the event it caused, in one
    /// transaction; for each, whether it was written (false: its lease was lost).
    func save(_ batch: [TaskTransition]) async throws -> [Bool]
    /// Gives back every task lease whose owner starts with `ownerPrefix` (one stage of one instance,
    /// `<instance>/<stage>/`), once that stage has stopped. A `submitting` task keeps its lease: only
    /// its expiry may decide that the submission's outcome is unknown.
    func releaseTaskLeases(ownerPrefix: String) async throws
    /// Writes the upstream task id and answer of a submission whose lease was lost while it was on
    /// the wire (a stalled process), so that a paid job is never untraceable. Changes only a task
    /// that has no upstream id yet; true if it did.
    func recordLateSubmission(taskID: String, _ submission: UpstreamSubmission) async throws -> Bool
    /// Puts a failed task back in the queue (in flight again, no longer counted as failed): the
    /// operator decided to pay for it again.
    func resubmit(taskID: String, now: Date) async throws -> Bool
    /// Writes `task` (already ended as cancelled) with its event, in one transaction, if the task is
    /// still `queued`, taking it from a submitter that claimed it but has not marked it `submitting`
    /// yet (that submitter's write then finds its lease lost, and it sends nothing). The database
    /// orders this write and the submitter's, so no task is both cancelled and submitted. False if the
    /// task was no longer queued. The task's share of its budget is given back.
    func cancel(_ task: RelayTask, event: NewEvent) async throws -> Bool

    /// The stop switch: no task of `scope` is claimed for submission until it is resumed, on every
    /// instance at its next claim (the claim itself reads the switch). Intake, polls, deliveries and
    /// streams go on; an abandoned submission is still resolved (it sends nothing).
    func pauseSubmissions(_ scope: ClientScope, at date: Date) async throws
    /// Lifts a pause of exactly this scope (a client's own pause, or the one for all); true if there was one.
    func resumeSubmissions(_ scope: ClientScope) async throws -> Bool
    /// The pauses in force, oldest first.
    func submissionPauses() async throws -> [SubmissionPause]
}

/// A pause of new submissions (see `TaskQueue.pauseSubmissions`).
public struct SubmissionPause: Sendable, Equatable {
    public var scope: ClientScope
    public var since: Date

    public init(scope: ClientScope, since: Date) {
        self.scope = scope
        self.since = since
    }
}

extension TaskQueue {
    /// A claim under the default bound of an owner's silence (`OwnerSilence.defaultLimit`).
    public func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease) async throws -> [RelayTask] {
        try await claimTasks(work, now: now, limit: limit, lease: lease, ownersSilentSince: now.addingTimeInterval(-OwnerSilence.defaultLimit))
    }

    /// One task on its own.
    public func insert(_ task: RelayTask, idempotency: IdempotencyKey?) async throws -> InsertOutcome {
        guard let outcome = try await insert([TaskInsertion(task, idempotency: idempotency)]).first else {
            throw StoreError.missingValue("insert outcome")
        }
        return outcome
    }

    /// One transition on its own; throws `StoreError.leaseLost` if its lease was lost.
    public func save(_ task: RelayTask, lease: Lease, keepLease: Bool, event: NewEvent?) async throws {
        guard try await save([TaskTransition(task, lease: lease, keepLease: keepLease, event: event)]) == [true] else {
            throw StoreError.leaseLost(task.id)
        }
    }
}

/// Which tasks a worker claims.
public enum TaskWork: Sendable {
    /// Queued tasks the key may carry (none while it is held), claimed to be sent with it, and
    /// `submitting` tasks whose lease expired (a relay died mid-submission).
    case submission(KeyShare = .configured)
    /// A queued task the key may carry, whatever its hold: the probe that finds out whether it takes work again.
    case accountProbe(KeyShare)
    /// Running tasks due for a poll.
    case poll
    /// Tasks whose videos are due to be stored.
    case store

    /// The state a claim of this work looks in (for submissions, also `submitting` abandoned).
    var state: TaskState {
        switch self {
        case .submission, .accountProbe: .queued
        case .poll: .running
        case .store: .storing
        }
    }

    /// The key a submission claim sends with.
    var share: KeyShare? {
        switch self {
        case .submission(let share), .accountProbe(let share): share
        case .poll, .store: nil
        }
    }
}

/// A task to be inserted, with the client's idempotency key if it sent one.
public struct TaskInsertion: Sendable {
    public var task: RelayTask
    public var idempotency: IdempotencyKey?

    public init(_ task: RelayTask, idempotency: IdempotencyKey?) {
        self.task = task
        self.idempotency = idempotency
    }
}

/// A client's `Idempotency-Key` and the fingerprint of the request body it was first used with.
public struct IdempotencyKey: Sendable, Equatable {
    public var key: String
    public var fingerprint: String

    public init(key: String, fingerprint: String) {
        self.key = key
        self.fingerprint = fingerprint
    }
}

public enum InsertOutcome: Sendable, Equatable {
    /// Committed and counted; what is left of each of its client's limits (none: no budget).
    case created(remaining: [BudgetLimit: Int])
    /// The key was used before with the same body: that task is the answer.
    case replayed(taskID: String)
    /// The key was used before with a different body.
    case conflict
    /// The task would go past one of its client's limits: nothing was written.
    case overBudget(BudgetRefusal)

    /// Created by a client without a budget.
    public static let created = InsertOutcome.created(remaining: [:])
}

/// A task's new state, written under `lease` together with the event it caused. `keepLease` holds on
/// to the row (e.g. while a submission is on the wire).
public struct TaskTransition: Sendable {
    public var task: RelayTask
    public var lease: Lease
    public var keepLease: Bool
    public var event: NewEvent?

    public init(_ task: RelayTask, lease: Lease, keepLease: Bool, event: NewEvent?) {
        self.task = task
        self.lease = lease
        self.keepLease = keepLease
        self.event = event
    }
}

/// Which tasks the console lists, newest first.
public struct TaskQuery: Sendable, Equatable {
    public var state: TaskState?
    /// Whose tasks (an operator lists every client's, or filters by one).
    public var scope: ClientScope
    /// Only the task with this id or upstream id, or tasks whose `metadata` contains this text.
    public var search: String?
    /// Continue after this task (the last one of the previous page).
    public var before: TaskCursor?
    public var limit: Int

    public init(state: TaskState? = nil, scope: ClientScope = .allClients, search: String? = nil, before: TaskCursor? = nil, limit: Int = 50) {
        self.state = state
        self.scope = scope
        self.search = search
        self.before = before
        self.limit = limit
    }

    /// `search` as a LIKE pattern for the metadata's JSON text (`\` escapes LIKE's own wildcards).
    var metadataPattern: String? {
        search.map { "%" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%" }
    }
}

/// A position in the newest-first task listing.
public struct TaskCursor: Sendable, Equatable {
    public var createdAt: Date
    public var id: String

    public init(createdAt: Date, id: String) {
        self.createdAt = createdAt
        self.id = id
    }
}
