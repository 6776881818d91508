import Foundation

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
public struct NewEvent: Sendable, Equatable {
    public var id: String
    public var type: WebhookEventType
    public var payload: Data

    public init(id: String = Identifier.message(), type: WebhookEventType, payload: Data) {
        self.id = id
        self.type = type
        self.payload = payload
    }
}

/// An event claimed for delivery, with what it takes to send and sign it.
public struct PendingDelivery: Sendable, Equatable {
    public var eventID: String
    public var taskID: String
    public var type: String
    public var payload: Data
    public var callbackURL: String
    /// Attempts made before this one.
    public var attempts: Int
    public var signingSecrets: [String]
}

public enum DeliveryState: String, Sendable, Codable {
    case pending
    case delivered
    /// The retry budget is spent.
    case failed
    /// The receiver answered 410 Gone: it asked never to be called again.
    case gone
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
public struct Client: Sendable, Equatable {
    public var id: String
    public var name: String
    public var signingSecret: String

    public init(id: String, name: String, signingSecret: String) {
        self.id = id
        self.name = name
        self.signingSecret = signingSecret
    }
}

public enum StoreError: Error, Equatable {
    /// The lease expired and another worker may own the row now; the caller's work is void.
    case leaseLost(String)
    case duplicateTask(String)
}

/// Durable state of the relay. Every method is one transaction, so a crash between two calls leaves
/// the database consistent and the next claim resumes the work. Implementations must make claims
/// exclusive across processes that share the database.
public protocol Store: Sendable {
    func insert(_ task: RelayTask) async throws
    /// A client's task; another client's id reads as absent.
    func task(id: String, clientID: String) async throws -> RelayTask?

    /// Leases up to `limit` due tasks, most overdue first.
    func claimTasks(_ work: TaskWork, now: Date, limit: Int, lease: Lease) async throws -> [RelayTask]
    /// Writes a task transition held under `lease`, plus the event it caused, atomically.
    /// `keepLease` holds on to the row (e.g. while a submission is on the wire).
    func save(_ task: RelayTask, lease: Lease, keepLease: Bool, event: NewEvent?) async throws

    /// Leases due events, never one whose task has an earlier event still pending.
    func claimDeliveries(now: Date, limit: Int, lease: Lease) async throws -> [PendingDelivery]
    func recordAttempt(_ attempt: DeliveryAttempt, resolution: DeliveryResolution, lease: Lease) async throws
    func callbackSummary(taskID: String) async throws -> CallbackSummary?

    /// Gives back every lease `owner` holds, on graceful shutdown.
    func releaseLeases(owner: String) async throws

    func client(keyHash: String) async throws -> Client?
    /// Inserts or replaces the client with this id.
    func upsertClient(_ client: Client, keyHash: String, now: Date) async throws
    func clientCount() async throws -> Int
}
