import Foundation

/// Where a task is in the relay's life cycle. Every change is one store transaction.
///
///     queued ──▶ submitting ──▶ running ──▶ succeeded | failed | cancelled
///        │            │               └──▶ storing ──▶ succeeded (with `--store-videos`)
///        │            └────────────────────▶ failed (outcome unknown, rejected)
///        └── retried while the upstream cannot be reached
public enum TaskState: String, Sendable, Codable, CaseIterable {
    /// Accepted and committed; not yet sent upstream.
    case queued
    /// The submission is on the wire. Finding a task here after its lease expired means the
    /// relay died mid-request: it may have been paid for, so it is never resent automatically.
    case submitting
    /// The upstream has it; the poller follows it.
    case running
    /// The upstream finished it; the relay is copying its videos before announcing the result.
    case storing
    case succeeded
    case failed
    case cancelled

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled: true
        case .queued, .submitting, .running, .storing: false
        }
    }
}

/// Why a task failed: a stable machine code plus a human message (the upstream's, when it gave one).
public struct TaskError: Codable, Sendable, Equatable {
    public var code: String
    public var message: String

    public init(code: Code, message: String) {
        self.init(code: code.rawValue, message: message)
    }

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public enum Code: String, Sendable {
        /// The upstream reported the generation as failed.
        case upstreamFailed = "upstream_failed"
        /// The upstream refused the request itself (400 and the like).
        case upstreamRejected = "upstream_rejected"
        /// The upstream account refused work (balance, key, permission) for longer than `--account-hold-limit`.
        case upstreamAccountUnavailable = "upstream_account_unavailable"
        /// The submission may have reached the upstream; resending could pay twice.
        case submissionOutcomeUnknown = "submission_outcome_unknown"
        /// The upstream no longer knows the task.
        case upstreamTaskNotFound = "upstream_task_not_found"
        /// The upstream's answers about the task could not be read, poll after poll.
        case upstreamUnreadable = "upstream_unreadable"
        /// The task did not end within its deadline.
        case timeout
        case cancelled

        /// The codes of tasks that ended on the upstream's account.
        public static let upstreamCodes: [Code] = [.upstreamFailed, .upstreamRejected, .upstreamAccountUnavailable, .submissionOutcomeUnknown,
                                                   .upstreamTaskNotFound, .upstreamUnreadable]
    }
}

/// The upstream's view of a task as last polled (stored as this JSON).
public struct UpstreamTaskView: Sendable, Equatable, Codable {
    public var status: String
    public var progress: Int?
    public var result: JSONValue?
    public var error: JSONValue?
    public var created: Int?
    public var completed: Int?
    public var estimatedTime: Double?
    public var actualTime: Double?

    enum CodingKeys: String, CodingKey {
        case status, progress, result, error, created, completed
        case estimatedTime = "estimated_time"
        case actualTime = "actual_time"
    }

    public init(status: String, progress: Int? = nil, result: JSONValue? = nil, error: JSONValue? = nil,
                created: Int? = nil, completed: Int? = nil, estimatedTime: Double? = nil, actualTime: Double? = nil) {
        self.status = status
        self.progress = progress
        self.result = result
        self.error = error
        self.created = created
        self.completed = completed
        self.estimatedTime = estimatedTime
        self.actualTime = actualTime
    }

    /// The relay state an upstream status (normalised by `UpstreamAnswer`) maps to; `nil` while the
    /// upstream is still working.
    public var terminalState: TaskState? {
        switch status {
        case "completed": .succeeded
        case "failed": .failed
        case "cancelled": .cancelled
        default: nil
        }
    }

    /// The upstream's error message, wherever in its loosely specified error object it put one.
    public var errorMessage: String? {
        error.flatMap(Self.message(in:))
    }

    /// Finds a human message in an upstream error object or error response body, whose shape the
    /// upstream does not fix (`message`, `msg`, `error.message`, or a bare string).
    public static func message(in value: JSONValue) -> String? {
        if let text = value.stringValue { return text }
        for key in ["message", "msg", "error", "reason", "detail"] {
            if let found = value[key].flatMap(message(in:)) { return found }
        }
        return nil
    }
}

/// One accepted generation and everything the relay knows about it.
public struct RelayTask: Sendable, Equatable {
    public var id: String
    public var clientID: String
    public var request: GenerationRequest
    /// nil for a stream-only task.
    public var callbackURL: String?
    public var metadata: JSONValue?
    public var callbackEvents: Set<WebhookEventType>
    public var state: TaskState
    public var upstreamTaskID: String?
    /// The upstream key it was (or is claimed to be) sent with, by name; it is polled with that key only.
    /// Set by the submission claim, never by a transition.
    public var upstreamKey: String?
    /// `upstreamKey`, or the configured key's name for a task from before keys had names.
    public var keyName: String { upstreamKey ?? UpstreamKey.configuredName }
    /// The start of the upstream's raw answer to the submission, whatever it was: evidence for an
    /// operator when the outcome is unknown.
    public var submissionAnswer: String?
    public var upstream: UpstreamTaskView?
    public var error: TaskError?
    public var createdAt: Date
    public var submittedAt: Date?
    public var completedAt: Date?
    /// When the submitter or poller should next look at this task; nil once terminal.
    public var nextRunAt: Date?
    /// Consecutive failed attempts at the current step (submission or poll); drives backoff.
    public var failures: Int
    /// The W3C `traceparent` of the request that created the task, when tracing is on: every later
    /// span (submission, polls, deliveries), in whichever instance, continues that one trace.
    public var traceParent: String?
    /// The relay's copies of the videos, one per video once storing ended; nil when videos are not stored.
    public var videoCopies: [VideoCopy]?

    public init(id: String = Identifier.task(), clientID: String, request: RelayRequest, now: Date) {
        self.id = id
        self.clientID = clientID
        self.request = request.generation
        self.callbackURL = request.callbackURL
        self.metadata = request.metadata
        self.callbackEvents = request.callbackEvents
        self.state = .queued
        self.createdAt = now
        self.nextRunAt = now
        self.failures = 0
    }

    // MARK: Transitions

    /// Every change of state goes through here: one of `TaskStateMachine` (checked in debug builds).
    private mutating func move(to next: TaskState) {
        assert(state == next || TaskStateMachine.allows(state, next), "no transition \(state) → \(next) in TaskStateMachine")
        state = next
    }

    public mutating func beginSubmission() {
        precondition(state == .queued, "only a queued task can be submitted")
        move(to: .submitting)
    }

    public mutating func submitted(_ submission: UpstreamSubmission, at now: Date, firstPollAt: Date) {
        move(to: .running)
        upstreamTaskID = submission.taskID
        submissionAnswer = submission.answer
        submittedAt = now
        nextRunAt = firstPollAt
        failures = 0
    }

    /// A step failed in a way worth retrying: count it and come back later.
    public mutating func retry(at date: Date) {
        if state == .submitting { move(to: .queued) }
        failures += 1
        nextRunAt = date
    }

    /// Ends the task as failed, returning the event to announce.
    public mutating func fail(_ code: TaskError.Code, message: String, at now: Date) -> WebhookEventType {
        move(to: .failed)
        error = TaskError(code: code, message: message)
        finish(at: now)
        return .taskFailed
    }

    /// Ends a task its client took back before it was submitted: nothing was paid.
    public mutating func cancel(at now: Date) -> WebhookEventType {
        move(to: .cancelled)
        error = TaskError(code: .cancelled, message: "Cancelled by its client before it was submitted upstream; nothing was paid.")
        finish(at: now)
        return .taskFailed
    }

    /// Holds a task that just succeeded upstream until its videos are stored: the success is
    /// announced by `stored(_:)`, with the copies.
    public mutating func beginStoring(at now: Date) {
        precondition(state == .succeeded, "only a succeeded task has videos to store")
        move(to: .storing)
        nextRunAt = now
        failures = 0
    }

    /// Ends storing with one copy (or reason for none) per video, returning the event to announce.
    public mutating func stored(_ copies: [VideoCopy]) -> WebhookEventType {
        precondition(state == .storing, "only a task being stored can end storing")
        move(to: .succeeded)
        videoCopies = copies
        nextRunAt = nil
        failures = 0
        return .taskSucceeded
    }

    /// Records a poll. Returns the event it calls for: the terminal one when the task ended,
    /// `task.progress` when the upstream's status or progress moved, nil otherwise.
    public mutating func observe(_ view: UpstreamTaskView, at now: Date, nextPollAt: Date) -> WebhookEventType? {
        let previous = upstream
        upstream = view
        failures = 0
        guard let terminal = view.terminalState else {
            nextRunAt = nextPollAt
            let moved = previous?.status != view.status || (previous?.progress ?? 0) != (view.progress ?? 0)
            return moved ? .taskProgress : nil
        }
        move(to: terminal)
        switch terminal {
        case .failed:
            error = TaskError(code: .upstreamFailed, message: view.errorMessage ?? "The upstream reported the generation as failed.")
        case .cancelled:
            error = TaskError(code: .cancelled, message: view.errorMessage ?? "The upstream cancelled the generation.")
        default:
            break
        }
        finish(at: now)
        return terminal == .succeeded ? .taskSucceeded : .taskFailed
    }

    private mutating func finish(at now: Date) {
        completedAt = now
        nextRunAt = nil
    }

    /// The status in the upstream's vocabulary, which is what drop-in clients understand.
    public var publicStatus: String {
        switch state {
        case .queued, .submitting: "pending"
        case .running: upstream?.status ?? "pending"
        // Done upstream, not yet announced: drop-in clients see it completed once the copies are made.
        case .storing: "processing"
        case .succeeded: "completed"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }

    public var progress: Int {
        state == .succeeded ? 100 : (upstream?.progress ?? 0)
    }
}
