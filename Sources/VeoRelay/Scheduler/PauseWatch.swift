import Logging
import Metrics
import ServiceLifecycle

/// Makes the stop switch visible on this instance: logs each pause and resume as it sees it (another
/// instance or `veo-relay pause` may have thrown it) and keeps `veo_relay_submissions_paused{scope}`
/// at 1 while a pause holds. The switch itself is read by every submission claim, not from here.
public struct PauseWatch: Service, CustomStringConvertible {
    let store: any TaskQueue
    let interval: Duration
    let logger: Logger

    public init(store: any TaskQueue, interval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public var description: String { "PauseWatch" }

    public func run() async throws {
        let failures = FailureBackoff(component: "pause-watch", logger: logger)
        var shown: Set<String> = []
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let pauses = try await store.submissionPauses()
                let now = Set(pauses.map { SubmissionPause.key($0.scope) })
                for scope in now.subtracting(shown) {
                    logger.warning("submissions paused", metadata: ["scope": "\(Self.label(scope))"])
                    Gauge(label: "veo_relay_submissions_paused", dimensions: [("scope", scope)]).record(1)
                }
                for scope in shown.subtracting(now) {
                    logger.notice("submissions resumed", metadata: ["scope": "\(Self.label(scope))"])
                    Gauge(label: "veo_relay_submissions_paused", dimensions: [("scope", scope)]).record(0)
                }
                shown = now
                failures.succeeded()
                await FailureBackoff.pause(interval)
            } catch {
                guard !Task.isCancelled else { return }
                await FailureBackoff.pause(failures.failed("could not read the stop switch", error: error))
            }
        }
    }

    private static func label(_ scope: String) -> String { scope == "*" ? "all clients" : "client \(scope)" }
}
