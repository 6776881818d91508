import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Keeps a failure that repeats (database unreachable, disk full) from spinning a loop or flooding
/// the log: each consecutive failure waits twice as long as the one before, up to `maximum`; it is
/// logged at most once per `logInterval` with the number of failures since the last line; and every
/// failure counts in `veo_relay_errors_total{component}`.
public final class FailureBackoff: Sendable {
    let component: String
    let logger: Logger
    let initial: Duration
    let maximum: Duration
    let logInterval: Duration

    private struct State {
        var consecutive = 0
        var lastLogged: ContinuousClock.Instant?
        var unlogged = 0
    }

    private let state = Mutex(State())

    public init(component: String, logger: Logger, initial: Duration = .milliseconds(100), maximum: Duration = .seconds(30),
                logInterval: Duration = .seconds(1)) {
        self.component = component
        self.logger = logger
        self.initial = initial
        self.maximum = maximum
        self.logInterval = logInterval
    }

    /// Records a failure and returns how long to wait before trying again.
    @discardableResult
    public func failed(_ message: Logger.Message, error: any Error) -> Duration {
        Counter(label: "veo_relay_errors_total", dimensions: [("component", component)]).increment()
        let now = ContinuousClock.now
        let (delay, report) = state.withLock { state -> (Duration, Int?) in
            state.consecutive += 1
            state.unlogged += 1
            let delay = min(maximum, initial * (1 << min(state.consecutive - 1, 20)))
            guard state.lastLogged.map({ now - $0 >= logInterval }) ?? true else { return (delay, nil) }
            defer { (state.lastLogged, state.unlogged) = (now, 0) }
            return (delay, state.unlogged)
        }
        if let report {
            logger.error(message, metadata: ["component": "\(component)", "error": "\(error)", "failures": "\(report)",
                                             "retry_in": "\(delay)"])
        }
        return delay
    }

    /// The failing step worked again: the next failure starts over at `initial`.
    public func succeeded() {
        let recovered = state.withLock { state -> Bool in
            defer { state.consecutive = 0 }
            return state.consecutive > 0
        }
        if recovered { logger.notice("recovered", metadata: ["component": "\(component)"]) }
    }

    /// Runs `step` every `interval` until graceful shutdown or cancellation, a failing step again
    /// after this backoff's delay (and logged as `failure`): the loop of a housekeeping service.
    public func repeatEvery(_ interval: Duration, failure: Logger.Message, _ step: () async throws -> Void) async {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await step()
                succeeded()
                await Self.pause(interval)
            } catch {
                guard !Task.isCancelled else { return }
                await Self.pause(failed(failure, error: error))
            }
        }
    }

    /// Waits `delay`, ending early on graceful shutdown or cancellation.
    public static func pause(_ delay: Duration) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
    }
}
