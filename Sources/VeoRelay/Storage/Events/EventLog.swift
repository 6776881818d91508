import Foundation

/// Every event of every task, in the order it was written, whether or not a webhook delivers it:
/// what event streams read. Events are written by `TaskQueue.save`, with the transition that caused them.
public protocol EventLog: Sendable {
    /// A task's events after `sequence` (0 for all), oldest first.
    func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent]
    /// The sequence of one of a task's events (to resume a stream after it).
    func eventSequence(eventID: String, taskID: String) async throws -> Int?
    /// The latest event sequence of each of these tasks that has any event.
    func latestEventSequences(taskIDs: [String]) async throws -> [String: Int]
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
