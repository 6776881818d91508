import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Keeps a PostgreSQL relay's clock on the database's: samples the database's clock, anchors the
/// relay's `AnchoredClock` on it (at the midpoint of the round trip), and reports how far the host's
/// wall clock is from it (`veo_relay_clock_offset_seconds`, database minus host), with a warning
/// while that is past `warnAbove`. The host's offset matters for nothing the relay decides; it tells an
/// operator that the host's clock (and its logs' times) are off.
public struct ClockSync: Service, CustomStringConvertible {
    let store: any StoreMaintenance
    let clock: AnchoredClock
    let interval: Duration
    let warnAbove: TimeInterval
    let logger: Logger
    /// Whether the first sample found the host's clock past the threshold (and said so).
    var startedFar = false

    public var description: String { "ClockSync" }

    /// The first sample, before anything runs on the clock; nil on a store without a clock of its own.
    public static func start(store: any StoreMaintenance, interval: Duration, warnAbove: TimeInterval, logger: Logger) async throws -> ClockSync? {
        let sent = ContinuousClock.now
        guard let database = try await store.databaseTime() else { return nil }
        var sync = ClockSync(store: store, clock: AnchoredClock(), interval: interval, warnAbove: warnAbove, logger: logger)
        sync.startedFar = sync.anchor(on: database, sent: sent, received: .now, warned: false)
        return sync
    }

    public func run() async throws {
        var warned = startedFar
        await FailureBackoff(component: "clock-sync", logger: logger).repeatEvery(interval, failure: "could not read the database's clock") {
            warned = try await sample(warned: warned)
        }
    }

    /// Anchors the clock on one sample; whether the offset is past the warning threshold now.
    func sample(warned: Bool) async throws -> Bool {
        let sent = ContinuousClock.now
        guard let database = try await store.databaseTime() else { return warned }
        return anchor(on: database, sent: sent, received: .now, warned: warned)
    }

    /// Anchors the clock on the database's time read between `sent` and `received`; whether the
    /// host's offset is past the warning threshold now (said when that changes).
    private func anchor(on database: Date, sent: ContinuousClock.Instant, received: ContinuousClock.Instant, warned: Bool) -> Bool {
        let midpoint = sent + (received - sent) / 2
        clock.reanchor(database, at: midpoint)
        let offset = database.timeIntervalSince(Date()) + (ContinuousClock.now - midpoint).seconds
        Gauge(label: "veo_relay_clock_offset_seconds").record(offset)
        let far = abs(offset) > warnAbove
        if far != warned {
            if far {
                logger.warning("this host's clock is off from the database's", metadata: [
                    "offset_seconds": "\(String(format: "%.3f", offset))", "threshold_seconds": "\(warnAbove)"])
            } else {
                logger.notice("this host's clock agrees with the database's again", metadata: ["offset_seconds": "\(String(format: "%.3f", offset))"])
            }
        }
        return far
    }
}
