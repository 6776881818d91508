import Foundation

/// The relay processes working on this database, each start a new incarnation with its own id (the
/// first part of every lease it takes). A `submitting` task is judged abandoned, its outcome unknown,
/// only on evidence that its owner is gone: the incarnation stopped, a later one found its process
/// gone, or its heartbeat has been silent longer than a partition or a failover lasts.
public protocol InstanceRegistry: Sendable {
    /// Records this incarnation as running, its heartbeat at `now`.
    func registerInstance(_ instance: RelayInstance, now: Date) async throws
    /// Moves the heartbeat on; false if the incarnation was declared stopped.
    func heartbeat(instanceID: String, at now: Date) async throws -> Bool
    /// Declares incarnations stopped: one that ended, or one whose process is known to be gone.
    func declareStopped(instanceIDs: [String], at now: Date) async throws
    /// The incarnations not declared stopped that ran on `host`.
    func runningInstances(host: String) async throws -> [RelayInstance]
}

/// One incarnation of the relay: which process on which host.
public struct RelayInstance: Sendable, Equatable {
    public var id: String
    /// Where its process id means something: the machine's boot and the process id namespace.
    public var host: String
    public var pid: Int

    public init(id: String, host: String, pid: Int) {
        self.id = id
        self.host = host
        self.pid = pid
    }
}

/// How long an owner's heartbeat may be silent before its `submitting` tasks are judged abandoned:
/// longer than a partition or a database failover of ordinary length (30–120 s).
public enum OwnerSilence {
    public static let defaultLimit: TimeInterval = 300
}
