import Foundation
import Synchronization

/// The soonest of the times added that is still ahead: enough for a loop that only asks whether
/// something it scheduled comes before its timer ends, at O(1) per step.
final class SoonestDue: Sendable {
    private let soonest = Mutex<Date?>(nil)

    func add(_ due: Date, after now: Date) {
        soonest.withLock { soonest in
            if let current = soonest, current > now, current <= due { return }
            soonest = due
        }
    }

    func first(after now: Date) -> Date? {
        soonest.withLock { soonest in soonest.flatMap { $0 > now ? $0 : nil } }
    }
}
