import Foundation
import PostgresNIO

/// Writes events and their deliveries on PostgreSQL, in one statement for a whole batch (see
/// `SQLiteEventWriter` for the embedded store's).
extension PostgresStore {
    /// An event a transition caused (numbered after its task's last one), or a client event (no task),
    /// with its callback if it goes to one.
    struct NewEventRow: Encodable {
        var id, type, payload, client_id: String
        var task_id, trace_parent, callback_url, destination: String?
        var created_at: Double

        init(_ event: NewEvent, of task: RelayTask) {
            self.init(event, clientID: task.clientID)
            task_id = task.id
            trace_parent = task.traceParent
            if event.webhook, let url = task.callbackURL {
                callback_url = url
                destination = CallbackDestination.key(for: url)
            }
        }

        init(_ event: NewEvent, clientID: String) {
            id = event.id
            type = event.type
            payload = event.payload.base64EncodedString()
            client_id = clientID
            created_at = event.createdAt.timeIntervalSince1970
        }
    }

    /// Writes events and their deliveries in one statement: to the task's callback where the row names
    /// one, and to each enabled endpoint of the client whose filter names the event's type.
    func insertEvents(_ events: [NewEventRow], on connection: PostgresConnection?) async throws {
        try await rows(PostgresQuery(unsafeSQL: """
            WITH r AS (
                SELECT * FROM json_to_recordset($1::json) AS r(id text, type text, payload text, client_id text, task_id text,
                                                              trace_parent text, callback_url text, destination text,
                                                              created_at double precision)),
            e AS (
                INSERT INTO events (id, task_id, seq, type, payload, client_id, created_at, trace_parent)
                SELECT r.id, r.task_id,
                       CASE WHEN r.task_id IS NULL THEN 0 ELSE (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE task_id = r.task_id) END,
                       r.type, decode(r.payload, 'base64'), r.client_id, r.created_at, r.trace_parent
                FROM r
                RETURNING id, task_id, seq, type, client_id, created_at)
            INSERT INTO deliveries (event_id, endpoint_id, task_id, seq, type, client_id, url, destination, created_at, state, next_attempt_at)
            SELECT e.id, '', e.task_id, e.seq, e.type, e.client_id, r.callback_url, r.destination, e.created_at, 'pending', e.created_at
            FROM e JOIN r ON r.id = e.id WHERE r.callback_url IS NOT NULL
            UNION ALL
            SELECT e.id, ep.id, e.task_id, e.seq, e.type, e.client_id, ep.url, ep.destination, e.created_at, 'pending', e.created_at
            FROM e JOIN endpoints ep ON ep.client_id = e.client_id AND ep.enabled = 1 AND jsonb_exists(ep.event_types::jsonb, e.type)
            """, binds: try Self.recordset(events)), on: connection)
    }
}
