import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Disables endpoints whose every attempt has failed for `disableAfter`, each announced to the
/// client's other endpoints as `endpoint.disabled`; re-enabling one (PATCH `enabled: true`) resumes
/// its pending events. Checks every `interval` and once at start, on the injected clock's time.
public struct EndpointWatch: Service, CustomStringConvertible {
    let store: any EndpointDirectory
    let clock: any WallClock
    let disableAfter: TimeInterval
    let interval: Duration
    let dispatcherWake: WakeSignal
    let logger: Logger

    public var description: String { "EndpointWatch" }

    public func run() async throws {
        await FailureBackoff(component: "endpoint-watch", logger: logger).repeatEvery(interval, failure: "could not check endpoints") {
            try await check()
        }
    }

    @discardableResult
    public func check() async throws -> [Endpoint] {
        let now = clock.now()
        let disabled = try await store.disableFailingEndpoints(failingBefore: now.addingTimeInterval(-disableAfter), now: now)
        for endpoint in disabled {
            Counter(label: "veo_relay_endpoints_disabled_total").increment()
            logger.warning("endpoint disabled", metadata: ["endpoint_id": "\(endpoint.id)", "client_id": "\(endpoint.clientID)",
                                                           "reason": "\(endpoint.disabledReason ?? "")"])
        }
        if !disabled.isEmpty { dispatcherWake.signal() }
        return disabled
    }
}
