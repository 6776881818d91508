import Foundation
import HTTPTypes
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Destination circuit breaker", .stopsWhatItStarts)
struct DestinationGateTests {
    @Test func opensAfterConsecutiveFailuresProbesOnceAndClosesOnSuccess() {
        var policy = DestinationGate.Policy()
        policy.maxConcurrent = 2
        policy.failureThreshold = 3
        policy.cooldown = 10
        let gate = DestinationGate(policy: policy)
        let t0 = Date(timeIntervalSince1970: 1_000)
        let host = "hooks.example:443"

        #expect(gate.admit(host, at: t0))
        #expect(gate.admit(host, at: t0))
        #expect(!gate.admit(host, at: t0), "at most maxConcurrent in flight")
        #expect(gate.blocked(at: t0) == [host])
        gate.finish(host, healthy: false, at: t0)
        gate.finish(host, healthy: false, at: t0)
        #expect(gate.admit(host, at: t0))
        gate.finish(host, healthy: false, at: t0)
        #expect(gate.isOpen(host, at: t0), "3 consecutive failures open the circuit")
        #expect(!gate.admit(host, at: t0.addingTimeInterval(9)))

        // Half-open after the cool-down: one probe, nobody else meanwhile.
        #expect(gate.admit(host, at: t0.addingTimeInterval(10)))
        #expect(!gate.admit(host, at: t0.addingTimeInterval(10)))
        gate.finish(host, healthy: false, at: t0.addingTimeInterval(10))
        #expect(!gate.admit(host, at: t0.addingTimeInterval(29)), "a failed probe doubles the cool-down")
        #expect(gate.admit(host, at: t0.addingTimeInterval(30)))
        gate.finish(host, healthy: true, at: t0.addingTimeInterval(30))
        #expect(!gate.isOpen(host, at: t0.addingTimeInterval(30)))
        #expect(gate.admit(host, at: t0.addingTimeInterval(30)) && gate.admit(host, at: t0.addingTimeInterval(30)))
        #expect(gate.blocked(at: t0.addingTimeInterval(30)) == [host])
        #expect(gate.admit("other.example:443", at: t0), "other destinations are unaffected")
    }
}
