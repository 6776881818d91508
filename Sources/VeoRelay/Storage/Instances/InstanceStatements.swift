import Foundation

/// The instance registry's statements, the same on both engines, and the registry made of them.
enum InstanceStatements {
    static let register = Statement("""
        INSERT INTO instances (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL
        """)

    static let heartbeat = Statement("UPDATE instances SET heartbeat_at = $2 WHERE id = $1 AND stopped_at IS NULL RETURNING id")
    static let stop = Statement("UPDATE instances SET stopped_at = $2 WHERE id IN LIST($1) AND stopped_at IS NULL")
    static let running = Statement("SELECT id, host, pid FROM instances WHERE host = $1 AND stopped_at IS NULL ORDER BY started_at")

    /// The condition under which a `submitting` task's owner still counts as alive, for the submission
    /// claims (`tasks` in scope; `silentSince` the placeholder for the oldest heartbeat that counts).
    static func ownerAlive(silentSince: String) -> String {
        """
        EXISTS (SELECT 1 FROM instances i WHERE i.stopped_at IS NULL AND i.heartbeat_at >= \(silentSince)
                AND substr(tasks.lease_owner, 1, length(i.id) + 1) = i.id || '/')
        """
    }
}

extension InstanceRegistry where Self: StatementRunner {
    public func registerInstance(_ instance: RelayInstance, now: Date) async throws {
        try await changed(InstanceStatements.register, [instance.id, instance.host, instance.pid, now])
    }

    public func heartbeat(instanceID: String, at now: Date) async throws -> Bool {
        try await changed(InstanceStatements.heartbeat, [instanceID, now], access: .repeatableWrite) == 1
    }

    public func declareStopped(instanceIDs: [String], at now: Date) async throws {
        guard !instanceIDs.isEmpty else { return }
        try await changed(InstanceStatements.stop, [instanceIDs, now])
    }

    public func runningInstances(host: String) async throws -> [RelayInstance] {
        try await rows(InstanceStatements.running, [host]) { row in
            RelayInstance(id: try row.text("id"), host: try row.text("host"), pid: try row.integer("pid"))
        }
    }
}
