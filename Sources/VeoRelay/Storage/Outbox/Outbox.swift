import Foundation

/// Events waiting for their webhook: claimed by due time under a lease, one at a time per task (a
/// task's events arrive in order), each attempt recorded with the event's new state.
public protocol Outbox: Sendable {
    /// Leases due events, never one whose task has an earlier event still pending, nor one bound
    /// for a destination in `excluding` (full or behind an open circuit).
    func claimDeliveries(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> [PendingDelivery]
    /// Gives a claimed event back untouched.
    func releaseDelivery(eventID: String, lease: Lease) async throws
    /// Gives back every event lease whose owner starts with `ownerPrefix` (one stage of one
    /// instance), once that stage has stopped.
    func releaseDeliveryLeases(ownerPrefix: String) async throws
    /// Writes attempts and their events' new states in one transaction; for each, whether it was
    /// written (false: its lease was lost, another worker may own the event now).
    func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool]

    /// The state of a task's latest webhook event.
    func callbackSummary(taskID: String) async throws -> CallbackSummary?
    /// The state of each task's latest webhook event, for those of `taskIDs` that have one (listings).
    func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState]
    /// A task's webhook deliveries with their attempt logs; nil if `scope` cannot see the task.
    func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]?
    /// Events in `state` that `scope` may see, newest first.
    func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord]
    /// Sends one of a task's webhook events (`eventID`, or else its latest) again with the same
    /// `webhook-id` and a fresh retry budget.
    func redeliver(taskID: String, scope: ClientScope, eventID: String?, now: Date) async throws -> DeliveryRecord?
}

extension Outbox {
    /// Sends a task's latest webhook event again.
    public func redeliver(taskID: String, scope: ClientScope, now: Date) async throws -> DeliveryRecord? {
        try await redeliver(taskID: taskID, scope: scope, eventID: nil, now: now)
    }

    /// One attempt on its own; throws `StoreError.leaseLost` if its lease was lost.
    public func recordAttempt(_ attempt: DeliveryAttempt, resolution: DeliveryResolution, lease: Lease) async throws {
        guard try await recordAttempts([AttemptRecord(attempt, resolution: resolution, lease: lease)]) == [true] else {
            throw StoreError.leaseLost(attempt.eventID)
        }
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
