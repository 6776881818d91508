import Foundation
import GRDB

/// Writes an event and its deliveries inside the caller's transaction: to the task's callback if the
/// event calls for it, and to each enabled endpoint of the client whose filter names its type.
extension SQLiteStore {
    static func writeEvent(_ event: NewEvent, of task: RelayTask, db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO events (id, task_id, seq, type, payload, client_id, created_at, trace_parent)
            VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE task_id = ?), ?, ?, ?, ?, ?)
            """).execute(arguments: [event.id, task.id, task.id, event.type, event.payload, task.clientID,
                             event.createdAt.timeIntervalSince1970, task.traceParent])
        if event.webhook, let url = task.callbackURL {
            try db.cachedStatement(sql: """
                INSERT INTO deliveries (event_id, endpoint_id, task_id, seq, type, client_id, url, destination, created_at, state, next_attempt_at)
                SELECT id, '', task_id, seq, type, client_id, ?, ?, created_at, 'pending', created_at FROM events WHERE id = ?
                """).execute(arguments: [url, CallbackDestination.key(for: url), event.id])
        }
        try fanOut(eventID: event.id, db: db)
    }

    /// A client event (no task): to the client's enabled endpoints subscribed to its type.
    static func writeClientEvent(_ event: NewEvent, clientID: String, db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO events (id, task_id, seq, type, payload, client_id, created_at) VALUES (?, NULL, 0, ?, ?, ?, ?)
            """).execute(arguments: [event.id, event.type, event.payload, clientID, event.createdAt.timeIntervalSince1970])
        try fanOut(eventID: event.id, db: db)
    }

    private static func fanOut(eventID: String, db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO deliveries (event_id, endpoint_id, task_id, seq, type, client_id, url, destination, created_at, state, next_attempt_at)
            SELECT e.id, ep.id, e.task_id, e.seq, e.type, e.client_id, ep.url, ep.destination, e.created_at, 'pending', e.created_at
            FROM events e JOIN endpoints ep ON ep.client_id = e.client_id AND ep.enabled = 1
            WHERE e.id = ? AND EXISTS (SELECT 1 FROM json_each(ep.event_types) WHERE value = e.type)
            """).execute(arguments: [eventID])
    }
}
