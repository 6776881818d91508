import Foundation
import Testing
@testable import VeoRelay

@Suite("Instances and the relay's clock", .stopsWhatItStarts)
struct InstanceHeartbeatTests {
    /// A relay that starts declares the incarnations of its host whose process is gone, and an earlier
    /// one with its own process id; a running process, and other hosts, it leaves alone.
    @Test func aStartingRelayDeclaresItsHostsGoneIncarnationsStopped() async throws {
        try #require(HostIdentity.isKnown, "needs /proc (Linux)")
        let fixture = try await StoreFixture(.sqlite)
        let store = fixture.store
        let host = HostIdentity.current
        let gonePID = try #require((1...4_000).lazy.map { 4_000_000 - $0 }.first { !HostIdentity.isRunning(pid: $0) })
        let runningPID = Int(getppid())
        #expect(HostIdentity.isRunning(pid: runningPID) && !HostIdentity.isRunning(pid: gonePID))
        for (id, onHost, pid) in [("gone", host, gonePID), ("running", host, runningPID), ("earlier", host, HostIdentity.pid),
                                  ("elsewhere", "another-host", gonePID)] {
            try await store.registerInstance(RelayInstance(id: id, host: onHost, pid: pid), now: fixture.t0)
        }
        let clock = ManualClock(fixture.t0)
        _ = try await InstanceHeartbeat.register(store: store, id: "me", clock: clock, interval: .seconds(10), logger: TestLog.logger)
        #expect(Set(try await store.runningInstances(host: host).map(\.id)) == ["running", "me"])
        #expect(try await store.runningInstances(host: "another-host").map(\.id) == ["elsewhere"], "only the heartbeat's silence tells there")
        store.close()
    }

    /// The relay's time moves with the monotonic clock from its reference, and never back.
    @Test func anAnchoredClockAdvancesFromItsReferenceAndNeverGoesBack() async throws {
        let start = ContinuousClock.now
        let clock = AnchoredClock(reference: Date(timeIntervalSince1970: 1_000), at: start)
        let first = clock.now()
        #expect(first.timeIntervalSince1970 >= 1_000 && first.timeIntervalSince1970 < 1_000 + (ContinuousClock.now - start).seconds + 0.001)
        clock.reanchor(Date(timeIntervalSince1970: 500), at: .now)
        #expect(clock.now() == first || clock.now() > first, "a sample behind the time already given does not turn it back")
        clock.reanchor(Date(timeIntervalSince1970: 5_000), at: .now)
        #expect(clock.now().timeIntervalSince1970 >= 5_000)
    }
}
