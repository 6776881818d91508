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

/// An event to be written in the same transaction as the transition that caused it. Every task event
/// is kept (the event stream shows them all); it is delivered to the task's callback if the task
/// subscribed to its type, and to each of the client's enabled endpoints whose filter names it.
public struct NewEvent: Sendable, Equatable {
    public var id: String
    /// A task event's type, or a client event's (which has no task and goes to endpoints only).
    public var type: String
    public var payload: Data
    /// Also when its first delivery attempts are due.
    public var createdAt: Date
    /// Whether to POST it to the task's callback as well.
    public var webhook: Bool

    public init(id: String = Identifier.message(), type: WebhookEventType, payload: Data, createdAt: Date, webhook: Bool = true) {
        self.id = id
        self.type = type.rawValue
        self.payload = payload
        self.createdAt = createdAt
        self.webhook = webhook
    }

    public init(id: String = Identifier.message(), clientEvent: ClientEventType, payload: Data, createdAt: Date) {
        self.id = id
        self.type = clientEvent.rawValue
        self.payload = payload
        self.createdAt = createdAt
        self.webhook = false
    }
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
