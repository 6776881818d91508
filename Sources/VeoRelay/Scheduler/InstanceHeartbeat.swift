import Foundation
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Keeps this incarnation's heartbeat in the database on the relay's clock (the database's, on
/// PostgreSQL), and declares stopped what is known to be gone: this incarnation when it ends, and
/// incarnations of this host whose processes no longer run (a relay killed and started again
/// declares its old incarnation at once). Its submitting tasks then go to the submission claim,
/// which may declare them outcome-unknown; a live owner's never do, however late its answer.
public struct InstanceHeartbeat: Service, CustomStringConvertible {
    let store: any InstanceRegistry
    let instance: RelayInstance
    let clock: any WallClock
    let interval: Duration
    let logger: Logger

    public var description: String { "InstanceHeartbeat" }

    /// Registers the incarnation and declares its host's gone ones, before any stage claims.
    public static func register(store: any InstanceRegistry, id: String, clock: any WallClock, interval: Duration,
                                logger: Logger) async throws -> InstanceHeartbeat {
        let heartbeat = InstanceHeartbeat(store: store, instance: RelayInstance(id: id, host: HostIdentity.current, pid: HostIdentity.pid),
                                          clock: clock, interval: interval, logger: logger)
        try await store.registerInstance(heartbeat.instance, now: clock.now())
        try await heartbeat.declareGoneNeighbours()
        return heartbeat
    }

    /// Beats until the stages have stopped (it stops after them), then declares this incarnation stopped.
    public func run() async throws {
        await FailureBackoff(component: "heartbeat", logger: logger).repeatEvery(interval, failure: "could not write this instance's heartbeat") {
            if try await !store.heartbeat(instanceID: instance.id, at: clock.now()) {
                logger.error("this instance was declared stopped while it runs", metadata: ["instance": "\(instance.id)"])
            }
            try await declareGoneNeighbours()
        }
        do {
            try await store.declareStopped(instanceIDs: [instance.id], at: clock.now())
        } catch {
            logger.warning("could not record this instance's stop; its heartbeat's silence will tell", metadata: ["error": "\(error)"])
        }
    }

    /// Incarnations of this host whose process is gone: not running, or this one's process id (an
    /// earlier incarnation that had the same id, as a container restarted gets).
    func declareGoneNeighbours() async throws {
        guard HostIdentity.isKnown else { return }
        let gone = try await store.runningInstances(host: instance.host).filter { other in
            other.id != instance.id && (other.pid == instance.pid || !HostIdentity.isRunning(pid: other.pid))
        }
        guard !gone.isEmpty else { return }
        try await store.declareStopped(instanceIDs: gone.map(\.id), at: clock.now())
        logger.notice("declared gone instances of this host stopped", metadata: ["instances": "\(gone.map(\.id).joined(separator: ", "))"])
    }
}

/// Where a process id means something: this boot of this machine, in this process id namespace.
/// Two relays with the same identity can see whether the other's process runs.
enum HostIdentity {
    static let current: String = {
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        guard let boot, let namespace else { return "unknown:\(ProcessInfo.processInfo.hostName)" }
        return "\(boot)/\(namespace)"
    }()

    /// Whether this host's identity could be read (Linux); without it no process is judged gone by its id.
    static var isKnown: Bool { !current.hasPrefix("unknown:") }

    static var pid: Int { Int(ProcessInfo.processInfo.processIdentifier) }

    /// Whether a process with this id runs here (one that exists but is not ours to signal runs too).
    static func isRunning(pid: Int) -> Bool {
        guard pid > 0, let id = pid_t(exactly: pid) else { return false }
        return kill(id, 0) == 0 || errno == EPERM
    }
}
