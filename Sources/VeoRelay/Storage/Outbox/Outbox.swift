import Foundation

/// Deliveries waiting to be made: one per event and destination (the task's callback, each matching
/// endpoint), claimed by due time under a lease, one at a time per task and destination (a
/// destination receives a task's events in order), each attempt recorded with the delivery's new state.
public protocol Outbox: Sendable {
    /// Leases due deliveries, never one whose task has an earlier event still pending for the same
    /// destination, nor one bound for a host in `excluding` (full or behind an open circuit). A delivery
    /// to a disabled endpoint is parked until it is enabled; one past its endpoint's `max_rate` is put
    /// back until the endpoint's next free slot.
    func claimDeliveryBatch(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> DeliveryClaim
    /// Gives claimed deliveries back untouched, in one write.
    func releaseDeliveries(_ keys: [DeliveryKey], lease: Lease) async throws
    /// Gives back every delivery lease whose owner starts with `ownerPrefix` (one stage of one
    /// instance), once that stage has stopped.
    func releaseDeliveryLeases(ownerPrefix: String) async throws
    /// Writes attempts and their deliveries' new states (and their endpoints' health) in one
    /// transaction; for each, whether it was written (false: its lease was lost).
    func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool]

    /// The state of the delivery of a task's latest event to its callback.
    func callbackSummary(taskID: String) async throws -> CallbackSummary?
    /// The same for each of `taskIDs` that has one (listings).
    func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState]
    /// A task's deliveries to every destination, with their attempt logs; nil if `scope` cannot see the task.
    func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]?
    /// Deliveries in `state` that `scope` may see, newest first.
    func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord]
    /// Sends one of a task's events (`eventID`, or else its latest delivered anywhere) again with the same
    /// `webhook-id` and a fresh set of retries, to `target` only (nil: to every destination it went to).
    /// The deliveries queued again; empty if there is none.
    func redeliver(taskID: String, scope: ClientScope, eventID: String?, target: DeliveryTarget?, now: Date) async throws -> [DeliveryRecord]
}

extension Outbox {
    /// The deliveries of a claim alone.
    public func claimDeliveries(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> [PendingDelivery] {
        try await claimDeliveryBatch(now: now, limit: limit, lease: lease, excluding: destinations).deliveries
    }

    /// Sends a task's latest event again, everywhere it went.
    public func redeliver(taskID: String, scope: ClientScope, now: Date) async throws -> [DeliveryRecord] {
        try await redeliver(taskID: taskID, scope: scope, eventID: nil, target: nil, now: now)
    }

    /// One attempt on its own; throws `StoreError.leaseLost` if its lease was lost.
    public func recordAttempt(_ attempt: DeliveryAttempt, resolution: DeliveryResolution, lease: Lease) async throws {
        guard try await recordAttempts([AttemptRecord(attempt, resolution: resolution, lease: lease)]) == [true] else {
            throw StoreError.leaseLost(attempt.key.description)
        }
    }
}

/// What a claim took, and when the deliveries it put back for their endpoints' rate fall due (the
/// dispatcher wakes then rather than after its idle interval).
public struct DeliveryClaim: Sendable {
    public var deliveries: [PendingDelivery]
    /// Sorted.
    public var heldUntil: [Date] = []
}

/// Where a delivery goes: the task's own `callback_url`, or one of the client's endpoints.
public enum DeliveryTarget: Sendable, Hashable, CustomStringConvertible {
    case callback
    case endpoint(String)

    /// As the API, the console and the shell name it: `callback`, or else an endpoint's id.
    public init(named name: String) {
        self = name == Self.callback.description ? .callback : .endpoint(name)
    }

    /// The `endpoint_id` column: '' for the callback.
    public init(stored: String) {
        self = stored.isEmpty ? .callback : .endpoint(stored)
    }

    public var stored: String {
        switch self {
        case .callback: ""
        case .endpoint(let id): id
        }
    }

    public var endpointID: String? {
        if case .endpoint(let id) = self { id } else { nil }
    }

    /// As the API names it: `callback` or the endpoint's id.
    public var description: String { endpointID ?? "callback" }
}

/// One delivery: an event bound for one destination.
public struct DeliveryKey: Sendable, Hashable, CustomStringConvertible {
    public var eventID: String
    public var target: DeliveryTarget

    public init(eventID: String, target: DeliveryTarget) {
        self.eventID = eventID
        self.target = target
    }

    public var description: String { "\(eventID)→\(target)" }
}

/// A delivery claimed for sending, with what it takes to send and sign it.
public struct PendingDelivery: Sendable, Equatable {
    public var key: DeliveryKey
    /// The task it belongs to; nil for a client event.
    public var taskID: String?
    public var type: String
    public var payload: Data
    public var url: String
    /// The URL's `host:port`, the unit of per-host limits and circuit breaking.
    public var destination: String
    /// Attempts made before this one.
    public var attempts: Int
    /// The current credentials of the client (callback) or endpoint, then the previous ones while a
    /// rotation's grace period runs: `whsec_…` and `whsk_…` texts.
    public var signingSecrets: [String]
    /// The task's trace, which the attempt's span continues (see `RelayTask.traceParent`).
    public var traceParent: String?

    public var eventID: String { key.eventID }
}

/// A delivery as the attempt-log and dead-letter APIs show it.
public struct DeliveryRecord: Sendable, Equatable {
    public var key: DeliveryKey
    public var taskID: String?
    public var type: String
    public var state: DeliveryState
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var url: String
    public var createdAt: Date
    public var deliveredAt: Date?
    /// Oldest first; empty where the listing does not include it.
    public var attemptLog: [DeliveryAttempt]

    public var eventID: String { key.eventID }
}

public enum DeliveryState: String, Sendable, Codable, CaseIterable {
    case pending
    case delivered
    /// The retries are used up (or its endpoint was deleted).
    case failed
    /// The receiver answered 410 Gone: it asked never to be called again.
    case gone
}

/// A finished delivery attempt, to be written with the new state of its delivery.
public struct AttemptRecord: Sendable, Equatable {
    public var attempt: DeliveryAttempt
    public var resolution: DeliveryResolution
    public var lease: Lease

    public init(_ attempt: DeliveryAttempt, resolution: DeliveryResolution, lease: Lease) {
        self.attempt = attempt
        self.resolution = resolution
        self.lease = lease
    }

    /// The delivery's columns after this attempt.
    var deliveryUpdate: (state: DeliveryState, nextAttemptAt: Date?, deliveredAt: Date?) {
        switch resolution {
        case .delivered: (.delivered, nil, attempt.attemptedAt)
        case .retry(let date): (.pending, date, nil)
        case .exhausted: (.failed, nil, nil)
        case .gone: (.gone, nil, nil)
        }
    }

    /// Whether the receiver took it: an endpoint's health counts this.
    var succeeded: Bool { resolution == .delivered }
}

/// What happens to an event after an attempt.
public enum DeliveryResolution: Sendable, Equatable {
    case delivered
    case retry(at: Date)
    case exhausted
    case gone
}

/// One HTTP attempt at a delivery, kept for the attempt log.
public struct DeliveryAttempt: Sendable, Equatable {
    public var key: DeliveryKey
    public var attemptedAt: Date
    public var statusCode: Int?
    public var latency: Double
    public var error: String?
    public var responseExcerpt: String?

    public init(key: DeliveryKey, attemptedAt: Date, statusCode: Int?, latency: Double, error: String?, responseExcerpt: String?) {
        self.key = key
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
