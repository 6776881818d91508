import Foundation
import PostgresNIO

extension PostgresStore: EventLog {
    public func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent] {
        try await rows("SELECT id, task_id, seq, type, payload FROM events WHERE task_id = \(taskID) AND seq > \(sequence) ORDER BY seq")
            .map(RowMapping.streamEvent)
    }

    public func eventSequence(eventID: String, taskID: String) async throws -> Int? {
        try await rows("SELECT seq FROM events WHERE id = \(eventID) AND task_id = \(taskID)").first.map { try $0.integer("seq") }
    }

    public func latestEventSequences(taskIDs: [String]) async throws -> [String: Int] {
        let rows = try await rows("SELECT task_id, MAX(seq) AS seq FROM events WHERE task_id = ANY(\(taskIDs)) GROUP BY task_id")
        return try Dictionary(rows.map { (try $0.text("task_id"), try $0.integer("seq")) }, uniquingKeysWith: max)
    }
}
