import Foundation
import GRDB

extension SQLiteStore: EventLog {
    public func streamEvents(taskID: String, after sequence: Int) async throws -> [StreamEvent] {
        try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT id, task_id, seq, type, payload FROM events WHERE task_id = ? AND seq > ? ORDER BY seq"),
                             arguments: [taskID, sequence]).map(RowMapping.streamEvent)
        }
    }

    public func eventSequence(eventID: String, taskID: String) async throws -> Int? {
        try await read { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT seq FROM events WHERE id = ? AND task_id = ?"), arguments: [eventID, taskID])
        }
    }

    public func latestEventSequences(taskIDs: [String]) async throws -> [String: Int] {
        let ids = try TaskColumns.text(taskIDs)
        return try await read { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT task_id, MAX(seq) AS seq FROM events WHERE task_id IN (SELECT value FROM json_each(?)) GROUP BY task_id
                """), arguments: [ids])
            return try Dictionary(rows.map { (try $0.text("task_id"), try $0.integer("seq")) }, uniquingKeysWith: max)
        }
    }
}
