import AsyncHTTPClient
import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Upstream protection and poll scheduling", .stopsWhatItStarts)
struct UpstreamGateTests {
    @Test func theBudgetRefillsAtItsRateAndCapsBursts() {
        let clock = ManualClock.startingNow()
        var policy = UpstreamGate.Policy()
        policy.rate = 4
        policy.burst = 2
        let gate = UpstreamGate(policy: policy, clock: clock)
        #expect(gate.take(upTo: 10) == 2)
        #expect(gate.take(upTo: 10) == 0)
        clock.advance(by: 0.5)
        #expect(gate.take(upTo: 10) == 2)
        clock.advance(by: 10)
        #expect(gate.take(upTo: 10) == 2, "a long quiet spell still allows only a burst")
        gate.refund(1)
        #expect(gate.take(upTo: 10) == 1)
    }

    @Test func theBreakerPausesAllTrafficAndProbesBeforeResuming() {
        let clock = ManualClock.startingNow()
        var policy = UpstreamGate.Policy()
        policy.rate = 1_000
        policy.burst = 1_000
        policy.breaker = CircuitBreaker.Policy(failureThreshold: 3, cooldown: 5, maxCooldown: 60)
        let gate = UpstreamGate(policy: policy, clock: clock)
        for _ in 0..<3 { gate.record(.failed) }
        #expect(gate.isOpen())
        #expect(gate.take(upTo: 10) == 0, "paused: no task spends a retry")
        clock.advance(by: 5)
        #expect(gate.take(upTo: 10) == 1, "one probe")
        #expect(gate.take(upTo: 10) == 0, "and nothing else while it is out")
        gate.refund(1)
        #expect(gate.take(upTo: 10) == 1, "a probe that was never sent does not block the next one")
        gate.record(.answered)
        #expect(gate.take(upTo: 10) == 10, "resumed on its own")
        gate.record(.throttled(retryAfter: 30))
        #expect(gate.take(upTo: 10) == 0, "a 429's Retry-After pauses everyone")
        clock.advance(by: 30)
        #expect(gate.take(upTo: 10) == 1)
    }

    @Test func theScheduleAimsAtTheCompletionProgressAllowsAndClosesInOnEstimates() throws {
        let estimates = DurationEstimates(defaults: [.fast: 60, .quality: 120])
        var policy = PollPolicy()
        policy.floor = 1
        policy.ceiling = 60
        policy.approach = 0.8
        let schedule = PollSchedule(policy: policy, estimates: estimates)
        let start = Date(timeIntervalSince1970: 1_000)
        var task = RelayTask(clientID: "c", request: try RequestValidator().validate(body: Scenarios.relayBody(Scenarios.all[0].json)), now: start)
        task.beginSubmission()
        task.submitted(UpstreamSubmission(taskID: "u", answer: ""), at: start, firstPollAt: start)

        // First poll: 80 % of the model's early estimate.
        #expect(schedule.firstPoll(for: task, submittedAt: start) == start.addingTimeInterval(48))
        // Progress 75 % after 90 s puts the duration between 90 / 0.76 ≈ 118.4 s and 90 / 0.75 = 120 s.
        // An estimate inside that range is taken as it is; one that the progress contradicts (200 s), or
        // none, gives way to the earliest end the range allows. The poll goes at that moment.
        func wait(progress: Int, estimate: Double?, at elapsed: TimeInterval) -> TimeInterval {
            let now = start.addingTimeInterval(elapsed)
            return schedule.nextPoll(for: task, observed: UpstreamTaskView(status: "processing", progress: progress, estimatedTime: estimate), now: now)
                .timeIntervalSince(now)
        }
        #expect(abs(wait(progress: 75, estimate: 119, at: 90) - 29) < 0.001)
        #expect(abs(wait(progress: 75, estimate: 200, at: 90) - (90 / 0.76 - 90)) < 0.001)
        #expect(abs(wait(progress: 75, estimate: nil, at: 90) - (90 / 0.76 - 90)) < 0.001)
        #expect(wait(progress: 40, estimate: nil, at: 48) == 60, "117 s is more than the ceiling away")
        // 98 % after 90 s: between 90.9 s and 91.8 s, less than the floor apart: the latest end, not
        // a poll at the floor that would likely come too early.
        #expect(abs(wait(progress: 98, estimate: nil, at: 90) - (90 / 0.98 - 90)) < 0.001)
        #expect(wait(progress: 99, estimate: nil, at: 150) == 1, "never more often than the floor")
        let view = UpstreamTaskView(status: "processing", progress: 40, estimatedTime: 200)
        let now = start.addingTimeInterval(48)
        // Closing in on an estimate, it leaves at least the floor for the last step, then aims at the end itself.
        #expect(schedule.wait(remaining: 10) == 8, "80 % of what is left")
        #expect(schedule.wait(remaining: 3) == 2, "80 % would leave less than the floor")
        #expect(schedule.wait(remaining: 1.6) == 1.6)
        #expect(schedule.wait(remaining: 0.4) == 1, "never more often than the floor")
        // Without progress the upstream's estimate decides; overdue tasks are polled at the floor.
        let pending = UpstreamTaskView(status: "pending", progress: 0, estimatedTime: 90)
        #expect(schedule.nextPoll(for: task, observed: pending, now: start.addingTimeInterval(40)) == start.addingTimeInterval(40 + 40))
        #expect(schedule.nextPoll(for: task, observed: pending, now: start.addingTimeInterval(10)) == start.addingTimeInterval(10 + 60),
                "80 % of 80 s is capped at the 60 s ceiling")
        #expect(schedule.nextPoll(for: task, observed: pending, now: start.addingTimeInterval(100)) == start.addingTimeInterval(101))
        // A fixed schedule ignores all of that.
        var fixed = policy
        fixed.mode = .fixed(5)
        #expect(PollSchedule(policy: fixed, estimates: estimates).nextPoll(for: task, observed: view, now: now) == now.addingTimeInterval(5))
    }

    @Test func estimatesAreLearnedFromRecentCompletions() {
        let estimates = DurationEstimates(defaults: [.fast: 60])
        #expect(estimates.early(for: .fast) == 60)
        for seconds in stride(from: 100.0, through: 190, by: 10) { estimates.record(seconds, for: .fast) }
        #expect(estimates.early(for: .fast) == 110, "the 10th percentile of 100…190")
        #expect(estimates.early(for: .quality) == 60, "no default for quality here: the fallback")
    }
}
