import Foundation

/// The event log's statements, the same on both engines.
enum EventStatements {
    static let after = Statement("SELECT id, task_id, seq, type, payload FROM events WHERE task_id = $1 AND seq > $2 ORDER BY seq")
    static let sequence = Statement("SELECT seq FROM events WHERE id = $1 AND task_id = $2")
    static let latest = Statement("SELECT task_id, MAX(seq) AS seq FROM events WHERE task_id IN LIST($1) GROUP BY task_id")
}

extension EventLog where Self: StatementRunner {
    public func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent] {
        try await rows(EventStatements.after, [taskID, sequence]) { try RowMapping.streamEvent($0) }
    }

    public func eventSequence(eventID: String, taskID: String) async throws -> Int? {
        try await first(EventStatements.sequence, [eventID, taskID]) { try $0.integer("seq") }
    }

    public func latestEventSequences(taskIDs: [String]) async throws -> [String: Int] {
        Dictionary(try await rows(EventStatements.latest, [taskIDs]) { (try $0.text("task_id"), try $0.integer("seq")) },
                       uniquingKeysWith: max)
    }
}
