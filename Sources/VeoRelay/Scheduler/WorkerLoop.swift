import Logging
import ServiceLifecycle

/// One stage of the pipeline (submitter, poller, dispatcher) as a service: it keeps up to
/// `concurrency` items in flight, claims more as slots free up, and otherwise idles until woken or
/// until `idleInterval` passes. A slow item holds one slot, never the whole stage.
///
/// On graceful shutdown it stops claiming, lets in-flight items finish, then gives back its leases.
public struct WorkerLoop<Item: Sendable>: Service {
    public var name: String
    public var concurrency: Int
    public var idleInterval: Duration
    public var wake: WakeSignal
    public var logger: Logger
    public var claim: @Sendable (_ limit: Int) async throws -> [Item]
    public var process: @Sendable (Item) async -> Void
    public var releaseLeases: @Sendable () async throws -> Void

    public init(name: String, concurrency: Int, idleInterval: Duration, wake: WakeSignal, logger: Logger,
                claim: @escaping @Sendable (Int) async throws -> [Item],
                process: @escaping @Sendable (Item) async -> Void,
                releaseLeases: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.concurrency = concurrency
        self.idleInterval = idleInterval
        self.wake = wake
        self.logger = logger
        self.claim = claim
        self.process = process
        self.releaseLeases = releaseLeases
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await runUntilShutdown()
        } onGracefulShutdown: {
            wake.signal()
        }
        do {
            try await releaseLeases()
        } catch {
            logger.error("could not release leases", metadata: ["worker": "\(name)", "error": "\(error)"])
        }
        logger.debug("worker stopped", metadata: ["worker": "\(name)"])
    }

    private enum Completion { case item, timer }

    private func runUntilShutdown() async {
        await withTaskGroup(of: Completion.self) { group in
            var inFlight = 0
            var timerRunning = false
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                if inFlight < concurrency {
                    do {
                        for item in try await claim(concurrency - inFlight) {
                            inFlight += 1
                            group.addTask {
                                await process(item)
                                return .item
                            }
                        }
                    } catch {
                        logger.error("claim failed", metadata: ["worker": "\(name)", "error": "\(error)"])
                    }
                }
                if !timerRunning {
                    timerRunning = true
                    group.addTask {
                        await wake.wait(upTo: idleInterval)
                        return .timer
                    }
                }
                switch await group.next() {
                case .item?: inFlight -= 1
                case .timer?: timerRunning = false
                case nil: return
                }
            }
            // Let in-flight items finish; the timer ends with the shutdown signal.
            wake.signal()
            for await _ in group {}
        }
    }
}
