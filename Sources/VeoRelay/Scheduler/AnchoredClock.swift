import Foundation
import Synchronization

/// The relay's "now" outside tests: a reference time, advanced by the monotonic clock. A step of the
/// host's wall clock (an NTP step, a clock set by hand) moves nothing the relay decides, so it neither
/// takes its own leases for expired nor stalls its due work. On SQLite the reference is the host's
/// wall clock when the relay started; on PostgreSQL it is the database's clock, sampled again and again
/// (`ClockSync`), so every instance on one database reads the same time whatever its host says.
public final class AnchoredClock: WallClock {
    private struct Anchor {
        var reference: Date
        var instant: ContinuousClock.Instant
        /// Never give a time earlier than one already given: a new sample may land a little behind.
        var latest: Date
    }

    private let anchor: Mutex<Anchor>

    public init(reference: Date = Date(), at instant: ContinuousClock.Instant = .now) {
        anchor = Mutex(Anchor(reference: reference, instant: instant, latest: reference))
    }

    public func now() -> Date {
        let instant = ContinuousClock.now
        return anchor.withLock { anchor in
            let time = anchor.reference.addingTimeInterval((instant - anchor.instant).seconds)
            anchor.latest = max(anchor.latest, time)
            return anchor.latest
        }
    }

    /// From now on, `reference` was the time at `instant`.
    func reanchor(_ reference: Date, at instant: ContinuousClock.Instant) {
        anchor.withLock { anchor in
            anchor.reference = reference
            anchor.instant = instant
        }
    }
}
