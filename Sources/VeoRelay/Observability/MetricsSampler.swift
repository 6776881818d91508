import Foundation
import Logging
import Metrics

/// Gauges read when `/metrics` is scraped, from the database and the in-memory gates: how much work
/// waits and how late it is (the lag operators alert on), and whether the upstream and webhook
/// destinations are being held back. Read on scrape, so they are as fresh as the scrape itself and
/// cost nothing between scrapes. Every instance reports the shared database's backlog.
struct MetricsSampler: Sendable {
    let store: any StoreMaintenance & UpstreamAccounts
    let upstream: UpstreamGate
    let destinations: DestinationGate
    let clock: any WallClock
    let failures: FailureBackoff

    /// How long a scrape waits for the database before reporting the previous figures.
    static let storeTimeout: Duration = .seconds(2)

    func sample() async {
        let now = clock.now()
        Gauge(label: "veo_relay_upstream_breaker_open").record(upstream.isOpen() ? 1 : 0)
        Gauge(label: "veo_relay_upstream_budget_tokens").record(upstream.availableTokens())
        Gauge(label: "veo_relay_destination_circuits_open").record(destinations.openCircuits(at: now))
        let backlog: BacklogStatistics
        let keys: [UpstreamKeyReport]
        do {
            (backlog, keys) = try await answer(within: Self.storeTimeout) { [store] in
                (try await store.backlog(now: now), try await UpstreamKeyReport.all(in: store, now: now))
            }
            failures.succeeded()
        } catch {
            failures.failed("could not read the backlog for metrics", error: error)
            return
        }
        for key in keys {
            Gauge(label: "veo_relay_upstream_account_held_seconds", dimensions: [("key", key.name)])
                .record(key.hold.map { max(0, now.timeIntervalSince($0.since)) } ?? 0)
            Gauge(label: "veo_relay_upstream_key_in_flight", dimensions: [("key", key.name)]).record(key.inFlight)
        }
        for state in TaskState.allCases {
            Gauge(label: "veo_relay_tasks", dimensions: [("state", state.rawValue)]).record(backlog.tasksByState[state] ?? 0)
        }
        let oldest = [("submission", backlog.oldestDueSubmission), ("poll", backlog.oldestDuePoll), ("delivery", backlog.oldestDueDelivery)]
        for (stage, due) in oldest {
            Gauge(label: "veo_relay_oldest_due_seconds", dimensions: [("stage", stage)])
                .record(due.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
    }

    /// Facts about this process, recorded once at start.
    static func recordStart(at date: Date) {
        Gauge(label: "veo_relay_start_time_seconds").record(date.timeIntervalSince1970)
        Gauge(label: "veo_relay_build_info", dimensions: [("version", RelayVersion.current)]).record(1)
    }
}

public enum RelayVersion {
    public static let current = "0.6.0"
}
