import Foundation
import Testing
@testable import VeoRelay

@Suite("Upstream key ring", .stopsWhatItStarts)
struct UpstreamKeyRingTests {
    /// Enabled keys are asked first in turn; a disabled key takes no submission but its secret still
    /// polls; a key's rate is its own; a key added later is found when a task names it.
    @Test func keysTakeTurnsWithinTheirOwnRates() async throws {
        let fixture = try await StoreFixture(.sqlite)
        let clock = ShiftedClock()
        let now = clock.now()
        #expect(try await fixture.store.addUpstreamKey(UpstreamKey(name: "slow", secret: "sk-slow", rate: 2, createdAt: now)))
        #expect(try await fixture.store.addUpstreamKey(UpstreamKey(name: "off", secret: "sk-off", enabled: false, createdAt: now)))
        let ring = UpstreamKeyRing(configuredSecret: "sk-configured", store: fixture.store, clock: clock)

        let first = try await ring.enabled().map(\.name)
        let second = try await ring.enabled().map(\.name)
        #expect(Set(first) == ["default", "slow"] && first != second, "\(first), then \(second)")
        let slow = try #require(try await ring.enabled().first { $0.name == "slow" })
        #expect(ring.take(slow, upTo: 10) == 2, "a key's burst is its rate")
        #expect(ring.take(slow, upTo: 10) == 0)
        ring.refund(slow, 1)
        #expect(ring.take(slow, upTo: 10) == 1)
        #expect(ring.take(try #require(try await ring.enabled().first { $0.name == "default" }), upTo: 10) == 10, "no rate, no limit here")

        #expect(try await ring.secret(of: "off")?.value == "sk-off", "a disabled key still polls its tasks")
        #expect(try await ring.secret(of: nil)?.value == "sk-configured")
        #expect(try await ring.secret(of: "later") == nil)
        #expect(try await fixture.store.addUpstreamKey(UpstreamKey(name: "later", secret: "sk-later", createdAt: now)))
        #expect(try await ring.secret(of: "later")?.value == "sk-later", "a key added since the last read is read at once when named")
        fixture.store.close()
    }
}
