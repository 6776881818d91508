import Foundation

/// What one client did with one model on one UTC day: the small aggregate the relay keeps beside its
/// tasks, changed in the same transaction as each task, so reading it costs the same at any task count.
public struct UsageRecord: Sendable, Equatable {
    public var clientID: String
    public var day: String
    public var model: String
    public var counts: UsageCounts
    /// On a row of paid generations by key (`UsageLedger.upstreamUsage`): the key that paid.
    public var upstreamKey: String?

    public init(clientID: String, day: String, model: String, counts: UsageCounts, upstreamKey: String? = nil) {
        self.clientID = clientID
        self.day = day
        self.model = model
        self.counts = counts
        self.upstreamKey = upstreamKey
    }
}

/// Tasks counted by the day they were accepted. `generations` and `videoSeconds` are what counts
/// against the budget: a task cancelled before submission gives its share back and is counted
/// under `cancelled` instead.
public struct UsageCounts: Sendable, Equatable, Codable {
    public var generations = 0
    public var videoSeconds = 0
    public var succeeded = 0
    public var failed = 0
    public var cancelled = 0

    public init(generations: Int = 0, videoSeconds: Int = 0, succeeded: Int = 0, failed: Int = 0, cancelled: Int = 0) {
        self.generations = generations
        self.videoSeconds = videoSeconds
        self.succeeded = succeeded
        self.failed = failed
        self.cancelled = cancelled
    }

    public static func + (lhs: UsageCounts, rhs: UsageCounts) -> UsageCounts {
        UsageCounts(generations: lhs.generations + rhs.generations, videoSeconds: lhs.videoSeconds + rhs.videoSeconds,
                    succeeded: lhs.succeeded + rhs.succeeded, failed: lhs.failed + rhs.failed, cancelled: lhs.cancelled + rhs.cancelled)
    }

    enum CodingKeys: String, CodingKey {
        case generations, succeeded, failed, cancelled
        case videoSeconds = "video_seconds"
    }
}

/// How a task's transition changes the aggregate (a delta on the row of its client, accepted day and
/// model), or, with `upstreamKey`, the paid generations of the key that sent it.
struct UsageChange: Sendable, Equatable {
    var clientID: String
    var day: String
    var model: String
    var delta: UsageCounts
    var upstreamKey: String?

    private init(_ task: RelayTask, _ delta: UsageCounts, upstreamKey: String? = nil) {
        clientID = task.clientID
        day = UsagePeriod.day(of: task.createdAt)
        model = task.request.model.rawValue
        self.delta = delta
        self.upstreamKey = upstreamKey
    }

    static func accepted(_ task: RelayTask) -> UsageChange {
        UsageChange(task, UsageCounts(generations: 1, videoSeconds: task.request.requestedSeconds))
    }

    /// The change a task's end makes; nil while it is not ended.
    static func ended(_ task: RelayTask) -> UsageChange? {
        switch task.state {
        case .succeeded: UsageChange(task, UsageCounts(succeeded: 1))
        case .failed: UsageChange(task, UsageCounts(failed: 1))
        case .cancelled: UsageChange(task, UsageCounts(generations: -1, videoSeconds: -task.request.requestedSeconds, cancelled: 1))
        case .queued, .submitting, .running, .storing: nil
        }
    }

    /// The changes a task's end makes: its client's row, and the row of the key that paid for it when
    /// it was submitted (a generation the upstream took, whatever its outcome).
    static func ends(_ task: RelayTask) -> [UsageChange] {
        guard let ended = ended(task) else { return [] }
        guard task.upstreamTaskID != nil, task.state == .succeeded || task.state == .failed else { return [ended] }
        let paid = UsageCounts(generations: 1, videoSeconds: task.request.requestedSeconds, succeeded: task.state == .succeeded ? 1 : 0,
                               failed: task.state == .failed ? 1 : 0)
        return [ended, UsageChange(task, paid, upstreamKey: task.keyName)]
    }

    /// A failed task sent again by an operator is in flight again, no longer failed.
    static func resubmitted(_ task: RelayTask) -> UsageChange {
        UsageChange(task, UsageCounts(failed: -1))
    }

    /// One change per row, in row order: a statement then touches each row once, and concurrent
    /// transactions lock rows in the same order.
    static func merged(_ changes: [UsageChange]) -> [UsageChange] {
        var merged: [String: UsageChange] = [:]
        for change in changes {
            let key = "\(change.upstreamKey ?? "")\u{0}\(change.clientID)\u{0}\(change.day)\u{0}\(change.model)"
            if var existing = merged[key] {
                existing.delta = existing.delta + change.delta
                merged[key] = existing
            } else {
                merged[key] = change
            }
        }
        return merged.sorted { $0.key < $1.key }.map(\.value)
    }
}

/// Usage rows summed the ways the API, the shell and the console show them.
extension [UsageRecord] {
    public var totals: UsageCounts { reduce(UsageCounts()) { $0 + $1.counts } }

    /// Every day from `first` through `last` (UTC day names), days without use as zeros.
    public func byDay(from first: String, through last: String) -> [(day: String, counts: UsageCounts)] {
        let sums = Dictionary(map { ($0.day, $0.counts) }, uniquingKeysWith: +)
        guard var date = UsagePeriod.start(ofDay: first) else { return [] }
        var days: [(day: String, counts: UsageCounts)] = []
        while case let day = UsagePeriod.day(of: date), day <= last {
            days.append((day, sums[day] ?? UsageCounts()))
            date = UsagePeriod.day.end(of: date)
        }
        return days
    }

    /// One sum per upstream key, in name order (rows of `UsageLedger.upstreamUsage`).
    public var byUpstreamKey: [(key: String, counts: UsageCounts)] {
        Dictionary(map { ($0.upstreamKey ?? UpstreamKey.configuredName, $0.counts) }, uniquingKeysWith: +).sorted { $0.key < $1.key }
            .map { ($0.key, $0.value) }
    }

    /// One sum per model, in model order.
    public var byModel: [(model: String, counts: UsageCounts)] {
        Dictionary(map { ($0.model, $0.counts) }, uniquingKeysWith: +).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// One sum per client, in id order.
    public var byClient: [(clientID: String, counts: UsageCounts)] {
        Dictionary(map { ($0.clientID, $0.counts) }, uniquingKeysWith: +).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
