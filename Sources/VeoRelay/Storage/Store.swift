import Foundation
import GRDB
import Logging

/// A claim on rows of work: whoever holds an unexpired lease is the only one working them.
public struct Lease: Sendable, Equatable {
    public var owner: String
    public var expiresAt: Date

    public init(owner: String, expiresAt: Date) {
        self.owner = owner
        self.expiresAt = expiresAt
    }
}

/// Which tasks a worker claims.
public enum TaskWork: Sendable {
    /// Queued tasks, and `submitting` tasks whose lease expired (a relay died mid-submission).
    case submission
    /// Running tasks due for a poll.
    case poll
}

/// An event to be written in the same transaction as the task transition that caused it.
/// Every event is kept (the event stream shows them all); only those the task subscribed to are delivered.
public struct NewEvent: Sendable, Equatable {
    public var id: String
    public var type: WebhookEventType
    public var payload: Data
    /// Also when its first delivery attempt is due.
    public var createdAt: Date
    /// Whether to POST it to the task's callback (`pending`), or only keep it for the stream (`unsubscribed`).
    public var webhook: Bool

    public init(id: String = Identifier.message(), type: WebhookEventType, payload: Data, createdAt: Date, webhook: Bool = true) {
        self.id = id
        self.type = type
        self.payload = payload
        self.createdAt = createdAt
        self.webhook = webhook
    }

    var initialState: DeliveryState { webhook ? .pending : .unsubscribed }
    var firstAttemptAt: Double? { webhook ? createdAt.timeIntervalSince1970 : nil }
}

/// An event as the live stream sends it: the webhook's id, type and exact body.
public struct StreamEvent: Sendable, Equatable {
    public var id: String
    public var taskID: String
    /// Its place among the task's events (1, 2, …): events of one task are written one at a time,
    /// under the task's lease, so this order is also their commit order.
    public var sequence: Int
    public var type: String
    public var payload: Data

    public var isTerminal: Bool {
        type == WebhookEventType.taskSucceeded.rawValue || type == WebhookEventType.taskFailed.rawValue
    }
}

/// Which tasks the console lists, newest first.
public struct TaskQuery: Sendable, Equatable {
    public var state: TaskState?
    public var clientID: String?
    /// Continue after this task (the last one of the previous page).
    public var before: TaskCursor?
    public var limit: Int

    public init(state: TaskState? = nil, clientID: String? = nil, before: TaskCursor? = nil, limit: Int = 50) {
        self.state = state
        self.clientID = clientID
        self.before = before
        self.limit = limit
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

/// An event claimed for delivery, with what it takes to send and sign it.
public struct PendingDelivery: Sendable, Equatable {
    public var eventID: String
    public var taskID: String
    public var type: String
    public var payload: Data
    public var callbackURL: String
    /// The callback's `host:port`, the unit of per-destination limits and circuit breaking.
    public var destination: String
    /// Attempts made before this one.
    public var attempts: Int
    /// The client's current secret, then its previous one while a rotation's grace period runs.
    public var signingSecrets: [String]
    /// The task's trace, which the attempt's span continues (see `RelayTask.traceParent`).
    public var traceParent: String?
}

/// An event's delivery as the attempt-log and dead-letter APIs show it.
public struct DeliveryRecord: Sendable, Equatable {
    public var eventID: String
    public var taskID: String
    public var type: String
    public var state: DeliveryState
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var callbackURL: String
    public var createdAt: Date
    public var deliveredAt: Date?
    /// Oldest first; empty where the listing does not include it.
    public var attemptLog: [DeliveryAttempt]
}

/// How the database runs one claim query.
public struct ClaimPlan: Sendable, Equatable {
    public var claim: String
    public var plan: String
}

/// How much work is waiting, for the metrics operators alert on.
public struct BacklogStatistics: Sendable, Equatable {
    public var tasksByState: [TaskState: Int] = [:]
    /// Due time of the most overdue queued submission, poll and pending delivery; nil when none is due.
    public var oldestDueSubmission: Date?
    public var oldestDuePoll: Date?
    public var oldestDueDelivery: Date?
}

/// A client as `keys list` shows it: never its key, never its secret.
public struct ClientRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var rotationEndsAt: Date?
}

public enum DeliveryState: String, Sendable, Codable, CaseIterable {
    case pending
    case delivered
    /// The retry budget is spent.
    case failed
    /// The receiver answered 410 Gone: it asked never to be called again.
    case gone
    /// Kept for the event stream only: the task did not subscribe its webhook to this type.
    case unsubscribed
}

/// A finished delivery attempt, to be written with the new state of its event.
public struct AttemptRecord: Sendable, Equatable {
    public var attempt: DeliveryAttempt
    public var resolution: DeliveryResolution
    public var lease: Lease

    public init(_ attempt: DeliveryAttempt, resolution: DeliveryResolution, lease: Lease) {
        self.attempt = attempt
        self.resolution = resolution
        self.lease = lease
    }

    /// The event's columns after this attempt.
    var eventUpdate: (state: DeliveryState, nextAttemptAt: Date?, deliveredAt: Date?) {
        switch resolution {
        case .delivered: (.delivered, nil, attempt.attemptedAt)
        case .retry(let date): (.pending, date, nil)
        case .exhausted: (.failed, nil, nil)
        case .gone: (.gone, nil, nil)
        }
    }
}

/// What happens to an event after an attempt.
public enum DeliveryResolution: Sendable, Equatable {
    case delivered
    case retry(at: Date)
    case exhausted
    case gone
}

/// One HTTP attempt at delivering an event, kept for the attempt log.
public struct DeliveryAttempt: Sendable, Equatable {
    public var eventID: String
    public var attemptedAt: Date
    public var statusCode: Int?
    public var latency: Double
    public var error: String?
    public var responseExcerpt: String?

    public init(eventID: String, attemptedAt: Date, statusCode: Int?, latency: Double, error: String?, responseExcerpt: String?) {
        self.eventID = eventID
        self.attemptedAt = attemptedAt
        self.statusCode = statusCode
        self.latency = latency
        self.error = error
        self.responseExcerpt = responseExcerpt
    }
}

/// The state of a task's callback as the read API reports it.
public struct CallbackSummary: Sendable, Equatable, Codable {
    public var state: String
    public var attempts: Int
    public var lastStatusCode: Int?
    public var lastError: String?
    public var nextAttemptAt: Int?

    enum CodingKeys: String, CodingKey {
        case state, attempts
        case lastStatusCode = "last_status_code"
        case lastError = "last_error"
        case nextAttemptAt = "next_attempt_at"
    }
}

/// An API client: its key is stored only as a hash; its secret signs its webhooks.
public struct Client: Sendable, Equatable, CustomStringConvertible {
    public var id: String
    public var name: String
    public var signingSecret: String

    public init(id: String, name: String, signingSecret: String) {
        self.id = id
        self.name = name
        self.signingSecret = signingSecret
    }

    public var description: String { "Client(\(id), \(name))" }

    /// When `upsertClient` changes a client's secret, the old one keeps signing this long.
    public static let replacedSecretGrace: TimeInterval = 86_400
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

/// A task to be inserted, with the client's idempotency key if it sent one.
public struct TaskInsertion: Sendable {
    public var task: RelayTask
    public var idempotency: IdempotencyKey?

    public init(_ task: RelayTask, idempotency: IdempotencyKey?) {
        self.task = task
        self.idempotency = idempotency
    }
}

public enum InsertOutcome: Sendable, Equatable {
    case created
    /// The key was used before with the same body: that task is the answer.
    case replayed(taskID: String)
    /// The key was used before with a different body.
    case conflict
}

public enum StoreError: Error, Equatable {
    /// The lease expired and another worker may own the row now; the caller's work is void.
    case leaseLost(String)
    case duplicateTask(String)
    /// A row lacked a value the schema requires.
    case missingValue(String)
}

/// Durable state of the relay. Every method is one transaction, so a crash between two calls leaves
/// the database consistent and the next claim resumes the work. Implementations must make claims
/// exclusive across processes that share the database.
///
/// Durability: a commit waits until it is on disk (through power loss), except the *repeatable*
/// writes (claims, lease releases and delivery-attempt records), whose loss to a power cut only
/// repeats safe work: a lease that was never taken, or a webhook sent again under the same
/// `webhook-id`, which receivers deduplicate. The next durable commit carries them to disk too.
public protocol Store: Sendable {
    /// Commits new tasks in one transaction, one outcome each; with an idempotency key, a repeat of
    /// the same request returns the first task instead. Throws (committing none) on a duplicate id.
    func insert(_ batch: [TaskInsertion]) async throws -> [InsertOutcome]
    /// A client's task; another client's id reads as absent. Any client's when `clientID` is nil (operators).
    func task(id: String, clientID: String?) async throws -> RelayTask?
    /// Tasks newest first, filtered (operators).
    func tasks(_ query: TaskQuery) async throws -> [RelayTask]

    /// Leases up to `limit` due tasks, most overdue first.
    func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease) async throws -> [RelayTask]
    /// When the earliest running task that nobody holds is due for its next poll; nil when none is running.
    func nextPollDue(now: Date) async throws -> Date?
    /// Writes task transitions held under their leases, each with the event it caused, in one
    /// transaction; for each, whether it was written (false: its lease was lost).
    func save(_ batch: [TaskTransition]) async throws -> [Bool]

    /// Leases due events, never one whose task has an earlier event still pending, nor one bound
    /// for a destination in `excluding` (full or behind an open circuit).
    func claimDeliveries(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> [PendingDelivery]
    /// Gives a claimed event back untouched.
    func releaseDelivery(eventID: String, lease: Lease) async throws
    /// Writes attempts and their events' new states in one transaction; for each, whether it was
    /// written (false: its lease was lost, another worker may own the event now).
    func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool]
    func callbackSummary(taskID: String) async throws -> CallbackSummary?
    /// A task's webhook deliveries with their attempt logs; nil if the task is not the client's
    /// (any client's when `clientID` is nil).
    func deliveryLog(taskID: String, clientID: String?) async throws -> [DeliveryRecord]?
    /// A task's events after `sequence` (0 for all), oldest first, whether or not they are delivered by webhook.
    func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent]
    /// The sequence of one of a task's events (to resume a stream after it).
    func eventSequence(eventID: String, taskID: String) async throws -> Int?
    /// The latest event sequence of each of these tasks that has any event.
    func latestEventSequences(taskIDs: [String]) async throws -> [String: Int]
    /// Events in `state`, newest first; all clients' when `clientID` is nil (operators).
    func deliveries(clientID: String?, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord]
    /// Sends one of a task's webhook events (`eventID`, or else its latest) again with the same
    /// `webhook-id` and a fresh retry budget.
    func redeliver(taskID: String, clientID: String?, eventID: String?, now: Date) async throws -> DeliveryRecord?
    /// Deletes attempt-log entries older than `cutoff`; returns how many.
    func pruneAttempts(before cutoff: Date) async throws -> Int
    /// Forgets idempotency keys first used before `cutoff`; returns how many.
    func pruneIdempotencyKeys(before cutoff: Date) async throws -> Int
    /// Puts a failed task back in the queue: the operator decided to pay for it again.
    func resubmit(taskID: String, now: Date) async throws -> Bool

    /// Gives back every lease whose owner starts with `ownerPrefix` (one stage of one instance,
    /// `<instance>/<stage>/`), once that stage has stopped. A `submitting` task keeps its lease.
    func releaseLeases(ownerPrefix: String) async throws
    /// Writes the upstream task id and answer of a submission whose lease was lost while it was on
    /// the wire (a stalled process), so that a paid job is never untraceable. Changes only a task
    /// that has no upstream id yet; true if it did.
    func recordLateSubmission(taskID: String, _ submission: UpstreamSubmission) async throws -> Bool

    /// The unrevoked client holding this key.
    func client(keyHash: String) async throws -> Client?
    /// Inserts or replaces the client with this id (un-revoking it). A changed secret is a rotation:
    /// the old one keeps signing for a grace period.
    func upsertClient(_ client: Client, keyHash: String, now: Date) async throws
    func clientCount() async throws -> Int
    func clients() async throws -> [ClientRecord]
    /// Makes `newSecret` current; the old one keeps signing too until `previousValidUntil`.
    func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool
    func revokeClient(id: String, at date: Date) async throws -> Bool
    /// Revokes the unrevoked clients whose id starts with `prefix` but is not in `keep` (configured
    /// keys that were removed from the configuration); returns how many.
    func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int

    /// A secret shared by every instance on this database (it signs watch tokens and console
    /// sessions); the first caller's `candidate` becomes it.
    func sharedSecret(named name: String, candidate: String) async throws -> String

    /// The database's plan for each claim query (`EXPLAIN QUERY PLAN`, `EXPLAIN`), to show index use.
    func explainClaims(now: Date) async throws -> [ClaimPlan]

    /// Tasks by state and the oldest due work of each stage, as of `now`.
    func backlog(now: Date) async throws -> BacklogStatistics

    /// Returns when the database answers and holds every migration this build knows (readiness);
    /// throws `StoreNotReady` or the database's error otherwise.
    func checkReady() async throws

    /// Releases connections; the store is not used afterwards.
    func close()
}

/// The database answers but is not the schema this build expects.
extension Store {
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

    /// Sends a task's latest webhook event again.
    public func redeliver(taskID: String, clientID: String?, now: Date) async throws -> DeliveryRecord? {
        try await redeliver(taskID: taskID, clientID: clientID, eventID: nil, now: now)
    }

    /// One attempt on its own; throws `StoreError.leaseLost` if its lease was lost.
    public func recordAttempt(_ attempt: DeliveryAttempt, resolution: DeliveryResolution, lease: Lease) async throws {
        guard try await recordAttempts([AttemptRecord(attempt, resolution: resolution, lease: lease)]) == [true] else {
            throw StoreError.leaseLost(attempt.eventID)
        }
    }
}

public struct StoreNotReady: Error, CustomStringConvertible {
    public var description: String
}

/// The database named in the configuration cannot be used; says which and why, in one line.
public struct StoreOpenError: Error, CustomStringConvertible {
    public var location: String
    public var reason: String
    public var description: String { "cannot open the database \(location): \(reason)" }
}

/// Opens the store a setting names: a `postgres://` URL, or else a SQLite file path.
public enum StoreLocation {
    public static func isPostgres(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    public static func open(_ location: String, logger: Logger) async throws -> any Store {
        if isPostgres(location) { return try await PostgresStore(url: location, logger: logger) }
        do {
            return try SQLiteStore(path: location)
        } catch let error as DatabaseError {
            throw StoreOpenError(location: display(location), reason: error.message ?? "\(error.resultCode)")
        } catch {
            throw StoreOpenError(location: display(location), reason: "\(error)")
        }
    }

    /// For logs and banners: the location without a password.
    public static func display(_ location: String) -> String {
        guard isPostgres(location), var components = URLComponents(string: location) else {
            return URL(fileURLWithPath: location).path
        }
        if components.password != nil { components.password = "redacted" }
        return components.string ?? "postgres://…"
    }
}
