import ServiceLifecycle
import Synchronization

/// Whether this relay has begun to stop; `/readyz` reports it.
public final class StopState: Sendable {
    private let stopping = Atomic(false)

    public init() {}

    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    func markStopping() { stopping.store(true, ordering: .releasing) }
}

/// The first service told of a graceful stop (it runs after the application, and a service group
/// stops services in reverse order): it fails readiness, then holds the stop for `grace` while the
/// server and workers carry on, so that a load balancer has stopped routing here before the server
/// refuses connections. A second signal (cancellation) ends the grace at once.
public struct ReadinessWithdrawal: Service, CustomStringConvertible {
    let state: StopState
    let grace: Duration
    public let description = "ReadinessWithdrawal"

    public func run() async throws {
        try? await gracefulShutdown()
        state.markStopping()
        try? await Task.sleep(for: grace)
    }
}
