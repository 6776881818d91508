import Foundation
import Synchronization

/// How the poller spaces polls of a running task.
public struct PollPolicy: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// Aim at the predicted completion and close in on it.
        case adaptive
        /// Poll every so often regardless (the baseline the benchmark compares against).
        case fixed(TimeInterval)
    }

    public var mode = Mode.adaptive
    /// Shortest and longest gap between two polls of one task.
    public var floor: TimeInterval = 1
    public var ceiling: TimeInterval = 60
    /// Share of the remaining time to wait while only an estimate predicts the end (no progress yet):
    /// below 1, so that an estimate a little too late does not overshoot the completion by much.
    public var approach = 0.8
    /// Expected durations before any task of the model has been seen to finish (Veo's documented
    /// lower ends: fast about 1–3 min, quality about 2–6 min).
    public var defaultEstimates: [GenerationRequest.Model: TimeInterval] = [.fast: 60, .quality: 120]

    public init() {}
}

/// Learns each model's typical duration from tasks that completed recently (the upstream's
/// `actual_time`), for the first poll of a task whose own estimate is not known yet.
public final class DurationEstimates: Sendable {
    private let samples = Mutex<[GenerationRequest.Model: [TimeInterval]]>([:])
    private let defaults: [GenerationRequest.Model: TimeInterval]
    static let window = 50

    public init(defaults: [GenerationRequest.Model: TimeInterval]) {
        self.defaults = defaults
    }

    public func record(_ duration: TimeInterval, for model: GenerationRequest.Model) {
        guard duration > 0 else { return }
        samples.withLock { samples in
            samples[model, default: []].append(duration)
            if samples[model]!.count > Self.window { samples[model]!.removeFirst() }
        }
    }

    /// A low quantile (the 10th percentile) of recent durations: the first poll should come near the
    /// earliest plausible completion, not after the typical one.
    public func early(for model: GenerationRequest.Model) -> TimeInterval {
        let recent = samples.withLock { $0[model] ?? [] }.sorted()
        guard !recent.isEmpty else { return defaults[model] ?? 60 }
        return recent[recent.count / 10]
    }
}

/// Decides when to poll: near the expected completion first; then, once the upstream reports
/// `progress`, at the completion that progress allows (whole percent bound the duration closely);
/// before that, closing in on its `estimated_time`. Never more often than `floor` nor less often than
/// `ceiling`.
public struct PollSchedule: Sendable {
    public let policy: PollPolicy
    public let estimates: DurationEstimates

    public init(policy: PollPolicy, estimates: DurationEstimates) {
        self.policy = policy
        self.estimates = estimates
    }

    /// When the task should complete, and how far that can be trusted.
    enum Prediction: Equatable {
        /// Bounded by the reported progress: poll at that moment.
        case bounded(Date)
        /// From an estimate alone (the upstream's or the model's): close in on it.
        case estimated(Date)
    }

    public func firstPoll(for task: RelayTask, submittedAt: Date) -> Date {
        switch policy.mode {
        case .fixed(let interval): return submittedAt.addingTimeInterval(interval)
        case .adaptive: return submittedAt.addingTimeInterval(wait(remaining: estimates.early(for: task.request.model)))
        }
    }

    public func nextPoll(for task: RelayTask, observed view: UpstreamTaskView, now: Date) -> Date {
        switch policy.mode {
        case .fixed(let interval):
            return now.addingTimeInterval(interval)
        case .adaptive:
            switch predictedEnd(of: task, observed: view, now: now) {
            case .bounded(let end):
                return now.addingTimeInterval(min(policy.ceiling, max(policy.floor, end.timeIntervalSince(now))))
            case .estimated(let end):
                return now.addingTimeInterval(wait(remaining: end.timeIntervalSince(now)))
            }
        }
    }

    /// Far from an estimated end, a share of what is left (the next poll may bring progress to narrow
    /// it), but never so much that less than the floor would be left; within twice the floor, the
    /// estimated end itself.
    func wait(remaining: TimeInterval) -> TimeInterval {
        let floor = policy.floor
        guard remaining >= 2 * floor else { return max(floor, remaining) }
        return min(policy.ceiling, max(floor, min(remaining * policy.approach, remaining - floor)))
    }

    /// When the task should complete, by the best evidence at hand. Progress is whole percent rounded
    /// down, so it bounds the duration: the upstream's `estimated_time` is taken where it lies within
    /// those bounds; otherwise the earliest end they allow, or their latest end once they are less than
    /// the floor apart (an early poll there would cost a floor's wait anyway, and one more poll).
    func predictedEnd(of task: RelayTask, observed view: UpstreamTaskView, now: Date) -> Prediction {
        let start = task.submittedAt ?? task.createdAt
        let elapsed = now.timeIntervalSince(start)
        if let progress = view.progress, (5..<100).contains(progress), elapsed > 0 {
            let bounds = (elapsed * 100 / Double(progress + 1))...(elapsed * 100 / Double(progress))
            let duration = if let estimate = view.estimatedTime, bounds.contains(estimate) { estimate }
                else if bounds.upperBound - bounds.lowerBound < policy.floor { bounds.upperBound }
                else { bounds.lowerBound }
            return .bounded(start.addingTimeInterval(duration))
        }
        return .estimated(start.addingTimeInterval(view.estimatedTime ?? estimates.early(for: task.request.model)))
    }
}

/// When a task that has not ended is given up: a generous multiple of its estimate, within bounds.
public struct DeadlinePolicy: Sendable, Equatable {
    public var multiple = 5.0
    public var minimum: TimeInterval = 20 * 60
    public var maximum: TimeInterval = 3 * 3_600

    public init() {}

    public func deadline(for task: RelayTask, estimates: DurationEstimates) -> Date {
        let estimate = task.upstream?.estimatedTime ?? estimates.early(for: task.request.model)
        return task.createdAt.addingTimeInterval(min(maximum, max(minimum, estimate * multiple)))
    }
}
