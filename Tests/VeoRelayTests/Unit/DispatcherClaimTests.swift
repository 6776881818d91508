import AsyncHTTPClient
import Foundation
import Testing
@testable import VeoRelay

@Suite("Dispatcher claims", .stopsWhatItStarts)
struct DispatcherClaimTests {
    /// The deliveries beyond a destination's free slots go back in a write of their own. When that write
    /// fails (the database away for a moment), the claimed ones still go out: each holds a slot that
    /// only its attempt gives back, and a claim that failed would keep the slots taken for good.
    @Test func aClaimWhoseGiveBackFailsStillHandsOutWhatHoldsSlots() async throws {
        let fixture = try await StoreFixture(.sqlite)
        for prompt in ["first", "second"] { _ = try await fixture.finishedTask(prompt) }
        var policy = DestinationGate.Policy()
        policy.maxConcurrent = 1
        let gate = DestinationGate(policy: policy)
        let clock = FixedClock(now: fixture.t0)
        let dispatcher = Dispatcher(store: GiveBackFails(store: fixture.store), http: HTTPClient.shared, clock: clock,
                                    leases: LeaseIssuer(instance: "a", stage: "dispatcher", duration: 30, clock: clock), gate: gate,
                                    configuration: EngineConfiguration(), logger: TestLog.logger)

        let claimed = try await dispatcher.claim(limit: 2)
        #expect(claimed.count == 1, "one slot: one delivery admitted, the other given back (or left to its lease)")
        let destination = try #require(claimed.first?.delivery.destination)
        #expect(gate.blocked(at: fixture.t0) == [destination], "the admitted delivery holds the slot")
        gate.finish(destination, healthy: true, at: fixture.t0)
        #expect(gate.blocked(at: fixture.t0).isEmpty, "its attempt gives the slot back")
        fixture.store.close()
    }
}

/// A store whose give-back of claimed deliveries fails, as when the database stops answering.
private struct GiveBackFails: Outbox {
    let store: any RelayStore

    func releaseDeliveries(_ keys: [DeliveryKey], lease: Lease) async throws {
        throw StorageFault.unavailable(database: "test", after: .seconds(1))
    }

    func claimDeliveryBatch(now: Date, limit: Int, lease: Lease, excluding destinations: Set<String>) async throws -> DeliveryClaim {
        try await store.claimDeliveryBatch(now: now, limit: limit, lease: lease, excluding: destinations)
    }
    func releaseDeliveryLeases(ownerPrefix: String) async throws { try await store.releaseDeliveryLeases(ownerPrefix: ownerPrefix) }
    func recordAttempts(_ records: [AttemptRecord]) async throws -> [Bool] { try await store.recordAttempts(records) }
    func callbackSummary(taskID: String) async throws -> CallbackSummary? { try await store.callbackSummary(taskID: taskID) }
    func deliveryStates(taskIDs: [String]) async throws -> [String: DeliveryState] { try await store.deliveryStates(taskIDs: taskIDs) }
    func deliveryLog(taskID: String, scope: ClientScope) async throws -> [DeliveryRecord]? { try await store.deliveryLog(taskID: taskID, scope: scope) }
    func deliveries(scope: ClientScope, state: DeliveryState, limit: Int) async throws -> [DeliveryRecord] {
        try await store.deliveries(scope: scope, state: state, limit: limit)
    }
    func redeliver(taskID: String, scope: ClientScope, eventID: String?, target: DeliveryTarget?, now: Date) async throws -> [DeliveryRecord] {
        try await store.redeliver(taskID: taskID, scope: scope, eventID: eventID, target: target, now: now)
    }
}
