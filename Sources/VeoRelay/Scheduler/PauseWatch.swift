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
        var shown: Set<String> = []
        await FailureBackoff(component: "pause-watch", logger: logger).repeatEvery(interval, failure: "could not read the stop switch") {
            let now = Set(try await store.submissionPauses().map(\.scope.stored))
            for scope in now.subtracting(shown) {
                logger.warning("submissions paused", metadata: ["scope": "\(ClientScope(stored: scope).label)"])
                Gauge(label: "veo_relay_submissions_paused", dimensions: [("scope", scope)]).record(1)
            }
            for scope in shown.subtracting(now) {
                logger.notice("submissions resumed", metadata: ["scope": "\(ClientScope(stored: scope).label)"])
                Gauge(label: "veo_relay_submissions_paused", dimensions: [("scope", scope)]).record(0)
            }
            shown = now
        }
    }

}
