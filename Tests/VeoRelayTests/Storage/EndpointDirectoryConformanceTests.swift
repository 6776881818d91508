import Foundation
import Testing
@testable import VeoRelay

/// Endpoints (`EndpointDirectory`) and the fan-out, parking, rate and health they bring to the outbox.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Endpoint directory conformance", .stopsWhatItStarts)
struct EndpointDirectoryConformanceTests {
    func endpoint(_ fixture: StoreFixture, _ host: String, types: [String] = EventTypeName.endpointDefault, rate: Int? = nil) -> Endpoint {
        Endpoint(clientID: fixture.client.id, url: "https://\(host)/in", eventTypes: types, maxRate: rate, now: fixture.t0)
    }

    func claim(_ fixture: StoreFixture, at seconds: TimeInterval = 0, owner: String = "a/dispatcher/1") async throws -> [PendingDelivery] {
        try await fixture.store.claimDeliveries(now: fixture.t0.addingTimeInterval(seconds), limit: 50,
                                                lease: fixture.lease(owner, until: seconds + 60), excluding: [])
    }

    func deliver(_ fixture: StoreFixture, _ claimed: [PendingDelivery], status: Int = 204, at seconds: TimeInterval = 0,
                 owner: String = "a/dispatcher/1") async throws {
        for delivery in claimed {
            var attempt = fixture.attempt(delivery.eventID, status: status, to: delivery.key.target)
            attempt.attemptedAt = fixture.t0.addingTimeInterval(seconds)
            let resolution: DeliveryResolution = status < 300 ? .delivered : .retry(at: fixture.t0.addingTimeInterval(seconds + 1))
            try await fixture.store.recordAttempt(attempt, resolution: resolution,
                                                  lease: fixture.lease(owner, until: seconds + 60))
        }
    }

    @Test(arguments: TestStores.all)
    func endpointsAreKeptPerClientAndChangedInPlace(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let first = endpoint(fixture, "one.example.com", types: ["task.succeeded"], rate: 3)
        try await fixture.store.createEndpoint(first, keys: SigningKeys.generate([.v1, .v1a]))
        #expect(try await fixture.store.endpoint(id: first.id, scope: .client(fixture.client.id)) == Self.stored(first, signatures: [.v1, .v1a]))
        #expect(try await fixture.store.endpoint(id: first.id, scope: .client("someone-else")) == nil)
        #expect(try await fixture.store.endpoints(scope: .client("someone-else")).isEmpty)
        var changed = first
        changed.url = "https://two.example.com:8443/in"
        changed.eventTypes = ["task.failed", "task.succeeded"]
        changed.maxRate = nil
        changed.description = "audit log"
        #expect(try await fixture.store.updateEndpoint(changed, now: fixture.t0))
        #expect(try await fixture.store.endpoints(scope: .allClients).map(\.url) == ["https://two.example.com:8443/in"])
        #expect(try await fixture.store.endpoint(id: first.id, scope: .allClients)?.maxRate == nil)
        #expect(try await fixture.store.deleteEndpoint(id: first.id, scope: .client("someone-else")) == false)
        #expect(try await fixture.store.deleteEndpoint(id: first.id, scope: .client(fixture.client.id)))
        #expect(try await fixture.store.endpoints(scope: .allClients).isEmpty)
    }

    /// Each event goes to the callback (if the task subscribed) and to every enabled endpoint whose filter
    /// names it, each its own delivery under the event's id, in order per destination.
    @Test(arguments: TestStores.all)
    func eventsFanOutToMatchingEnabledEndpointsInOrderPerDestination(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let everything = endpoint(fixture, "all.example.com")
        let succeededOnly = endpoint(fixture, "done.example.com", types: ["task.succeeded"])
        var off = endpoint(fixture, "off.example.com")
        off.enabled = false
        for created in [everything, succeededOnly, off] { try await fixture.store.createEndpoint(created, keys: .generate([.v1])) }

        let lease = fixture.lease("a/poller/1", until: 60)
        var task = try await fixture.runningTask("fan out", lease: lease)
        let progress = NewEvent(type: .taskProgress, payload: Data(#"{"n":1}"#.utf8), createdAt: fixture.t0, webhook: false)
        try await fixture.store.save(task, lease: lease, keepLease: true, event: progress)
        _ = task.observe(UpstreamTaskView(status: "completed", progress: 100), at: fixture.t0, nextPollAt: fixture.t0)
        let done = NewEvent(type: .taskSucceeded, payload: Data(#"{"n":2}"#.utf8), createdAt: fixture.t0)
        try await fixture.store.save(task, lease: lease, keepLease: false, event: done)

        let first = try await claim(fixture)
        #expect(Set(first.map(\.key)) == [DeliveryKey(eventID: progress.id, target: .endpoint(everything.id)),
                                          DeliveryKey(eventID: done.id, target: .callback),
                                          DeliveryKey(eventID: done.id, target: .endpoint(succeededOnly.id))],
                "the progress event went to the endpoint of every type only; the succeeded one waits behind it there")
        #expect(first.first { $0.key.target == .endpoint(succeededOnly.id) }?.url == succeededOnly.url)
        #expect(first.first { $0.key.target == .endpoint(succeededOnly.id) }?.destination == "done.example.com:443")
        #expect(first.first { $0.key.target == .callback }?.signingSecrets == [fixture.client.signingSecret])
        let endpointSecrets = try #require(first.first { $0.key.target == .endpoint(everything.id) }?.signingSecrets)
        #expect(endpointSecrets.count == 1 && endpointSecrets != [fixture.client.signingSecret], "an endpoint signs with its own secret")
        try await deliver(fixture, first)
        #expect(try await claim(fixture).map(\.key) == [DeliveryKey(eventID: done.id, target: .endpoint(everything.id))])

        let log = try #require(try await fixture.store.deliveryLog(taskID: task.id, scope: .client(fixture.client.id)))
        #expect(log.count == 4)
        #expect(try await fixture.store.callbackSummary(taskID: task.id)?.state == "delivered", "the callback's summary ignores endpoints")
        let replay = try await fixture.store.redeliver(taskID: task.id, scope: .client(fixture.client.id), eventID: done.id,
                                                       target: .endpoint(succeededOnly.id), now: fixture.t0)
        #expect(replay.map(\.key) == [DeliveryKey(eventID: done.id, target: .endpoint(succeededOnly.id))], "one destination only")
        let everywhere = try await fixture.store.redeliver(taskID: task.id, scope: .client(fixture.client.id), now: fixture.t0)
        #expect(Set(everywhere.map(\.key.target)) == [.callback, .endpoint(everything.id), .endpoint(succeededOnly.id)])
    }

    /// Disabled, an endpoint's deliveries wait without a due time; enabled again they are due at once.
    /// A new URL carries the pending ones along; deleting ends them.
    @Test(arguments: TestStores.all)
    func disablingParksEnablingResumesAndDeletingEnds(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        var hook = endpoint(fixture, "hook.example.com", types: ["task.succeeded"])
        try await fixture.store.createEndpoint(hook, keys: .generate([.v1]))
        let taskID = try await fixture.finishedTask("parked")
        hook.enabled = false
        #expect(try await fixture.store.updateEndpoint(hook, now: fixture.t0))
        let callback = try await claim(fixture)
        #expect(callback.map(\.key.target) == [.callback], "the disabled endpoint's delivery is held")
        try await deliver(fixture, callback)
        #expect(try await claim(fixture, at: 3_600).isEmpty)

        hook.enabled = true
        hook.url = "https://moved.example.com/in"
        #expect(try await fixture.store.updateEndpoint(hook, now: fixture.t0.addingTimeInterval(7_200)))
        let resumed = try await claim(fixture, at: 7_200)
        #expect(resumed.map(\.key.target) == [.endpoint(hook.id)])
        #expect(resumed.first?.url == "https://moved.example.com/in" && resumed.first?.destination == "moved.example.com:443")
        try await fixture.store.releaseDeliveries([try #require(resumed.first).key], lease: fixture.lease("a/dispatcher/1", until: 7_260))

        #expect(try await fixture.store.deleteEndpoint(id: hook.id, scope: .client(fixture.client.id)))
        let log = try #require(try await fixture.store.deliveryLog(taskID: taskID, scope: .allClients))
        let ended = try #require(log.first { $0.key.target == .endpoint(hook.id) })
        #expect(ended.state == .failed && ended.lastError == "endpoint deleted")
        #expect(try await claim(fixture, at: 7_300).isEmpty)
    }

    /// `max_rate` spaces an endpoint's sends 1/rate apart: the rest go back until the next free slot,
    /// on this store and on a second one sharing the database (another relay).
    @Test(arguments: TestStores.all)
    func anEndpointsRateSpacesItsSendsAcrossStores(store kind: TestStores.Kind) async throws {
        let location = try await kind.freshLocation()
        let fixture = try await StoreFixture(kind, at: location)
        let other = try await StoreLocation.open(location, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { fixture.store.close(); other.close() }
        try await fixture.store.createEndpoint(endpoint(fixture, "slow.example.com", types: ["task.succeeded"], rate: 2), keys: .generate([.v1]))
        for index in 0..<4 { _ = try await fixture.finishedTask("rated \(index)") }

        func endpointClaims(_ store: any RelayStore, at seconds: TimeInterval) async throws -> Int {
            try await store.claimDeliveries(now: fixture.t0.addingTimeInterval(seconds), limit: 50,
                                            lease: fixture.lease("x/dispatcher/\(seconds)", until: seconds + 60), excluding: [])
                .count { $0.key.target != .callback }
        }
        let first = try await fixture.store.claimDeliveryBatch(now: fixture.t0, limit: 50, lease: fixture.lease("x/dispatcher/first", until: 60),
                                                               excluding: [])
        #expect(first.deliveries.count { $0.key.target != .callback } == 1, "one of four now")
        #expect(first.heldUntil == [0.5, 1.0, 1.5].map(fixture.t0.addingTimeInterval), "the rest put back one slot apart, and said so")
        #expect(try await endpointClaims(other, at: 0.49) == 0)
        #expect(try await endpointClaims(other, at: 0.5) == 1, "the next slot, half a second on, on the other relay")
        #expect(try await endpointClaims(fixture.store, at: 0.75) == 0)
        #expect(try await endpointClaims(fixture.store, at: 1.0) == 1)
        #expect(try await endpointClaims(other, at: 1.2) == 0)
        #expect(try await endpointClaims(other, at: 1.5) == 1)
    }

    /// Two relays claiming the same due deliveries at the same moment: the compare-and-set on the endpoint's
    /// slot lets one of them send.
    @Test(arguments: TestStores.all)
    func aSlotIsTakenByOneRelayOnly(store kind: TestStores.Kind) async throws {
        let location = try await kind.freshLocation()
        let fixture = try await StoreFixture(kind, at: location)
        let other = try await StoreLocation.open(location, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { fixture.store.close(); other.close() }
        try await fixture.store.createEndpoint(endpoint(fixture, "once.example.com", types: ["task.succeeded"], rate: 1), keys: .generate([.v1]))
        for index in 0..<8 { _ = try await fixture.finishedTask("contended \(index)") }
        let claims = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, store) in [fixture.store, other, fixture.store, other].enumerated() {
                group.addTask {
                    try await store.claimDeliveries(now: fixture.t0, limit: 4, lease: fixture.lease("r\(index)/dispatcher/1", until: 60), excluding: [])
                        .count { $0.key.target != .callback }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(claims == 1, "one send in the first second, however the claims interleave")
    }

    /// A failure streak is kept per endpoint; one failing since before the cutoff is disabled with an
    /// `endpoint.disabled` event for the client's endpoints subscribed to it; health counts attempts.
    @Test(arguments: TestStores.all)
    func failingEndpointsAreDisabledAndAnnounced(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let failing = endpoint(fixture, "down.example.com", types: ["task.succeeded"])
        let watcher = endpoint(fixture, "ops.example.com", types: ["endpoint.disabled"])
        for created in [failing, watcher] { try await fixture.store.createEndpoint(created, keys: .generate([.v1])) }
        _ = try await fixture.finishedTask("streak")
        let claimed = try await claim(fixture)
        try await deliver(fixture, claimed.filter { $0.key.target == .endpoint(failing.id) }, status: 500)
        try await deliver(fixture, claimed.filter { $0.key.target == .callback })
        #expect(try await fixture.store.endpoint(id: failing.id, scope: .allClients)?.failingSince == fixture.t0)
        let health = try await fixture.store.endpointHealth(scope: .client(fixture.client.id), since: fixture.t0)
        #expect(health[failing.id]?.attempts == 1 && health[failing.id]?.succeeded == 0 && health[failing.id]?.lastError == "HTTP 500")
        #expect(health[watcher.id] == nil)

        #expect(try await fixture.store.disableFailingEndpoints(failingBefore: fixture.t0, now: fixture.t0).isEmpty, "not failing long enough")
        let later = fixture.t0.addingTimeInterval(5 * 86_400)
        let disabled = try await fixture.store.disableFailingEndpoints(failingBefore: later, now: later)
        #expect(disabled.map(\.id) == [failing.id])
        let stored = try #require(try await fixture.store.endpoint(id: failing.id, scope: .allClients))
        #expect(!stored.enabled && stored.disabledReason?.hasPrefix("every attempt failed since") == true)
        let announced = try await fixture.store.claimDeliveries(now: later, limit: 50, lease: fixture.lease("a/dispatcher/2", until: 5 * 86_400 + 60),
                                                                excluding: [])
        #expect(announced.map(\.key.target) == [.endpoint(watcher.id)], "the watcher hears of it; the disabled endpoint's retry is held")
        #expect(announced.first?.type == "endpoint.disabled" && announced.first?.taskID == nil)
        let payload = try JSONValue.parse(try #require(announced.first).payload)
        #expect(payload["data"]?["endpoint_id"]?.stringValue == failing.id)
        #expect(try await fixture.store.disableFailingEndpoints(failingBefore: later, now: later).isEmpty, "once")
    }

    /// `v1a` public keys of the client and its endpoints, the previous ones only during their grace.
    @Test(arguments: TestStores.all)
    func publicKeysArePublishedWithThePreviousOnesDuringTheGrace(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let hook = endpoint(fixture, "keys.example.com")
        let firstKeys = SigningKeys.generate([.v1a])
        try await fixture.store.createEndpoint(hook, keys: firstKeys)
        #expect(try await fixture.store.publishedKeys(clientID: fixture.client.id, now: fixture.t0)
            == [PublishedKey(endpointID: hook.id, publicKey: firstKeys.publicKeys[0], state: "current")], "the client signs with v1 only")
        let nextKeys = SigningKeys.generate([.v1, .v1a])
        let graceEnd = fixture.t0.addingTimeInterval(60)
        #expect(try await fixture.store.rotateEndpointKeys(id: hook.id, scope: .client(fixture.client.id), keys: nextKeys,
                                                           previousValidUntil: graceEnd, now: fixture.t0))
        #expect(try await fixture.store.publishedKeys(clientID: fixture.client.id, now: fixture.t0)
            == [PublishedKey(endpointID: hook.id, publicKey: nextKeys.publicKeys[0], state: "current"),
                PublishedKey(endpointID: hook.id, publicKey: firstKeys.publicKeys[0], state: "previous", expiresAt: graceEnd)])
        #expect(try await fixture.store.endpointCredentials(id: hook.id, scope: .allClients, now: fixture.t0)
            == nextKeys.credentials.map(\.encoded) + [firstKeys.stored], "both sign during the grace")
        #expect(try await fixture.store.publishedKeys(clientID: fixture.client.id, now: graceEnd).count == 1)
        #expect(try await fixture.store.endpoint(id: hook.id, scope: .allClients)?.signatures == [.v1, .v1a])
    }

    /// Intake crossing 80 % and 100 % of a period limit writes `budget.warning` and `budget.exhausted`
    /// for the client's endpoints subscribed to them, once each.
    @Test(arguments: TestStores.all)
    func budgetAlertsGoToSubscribedEndpoints(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        _ = try await fixture.store.setBudget(ClientBudget([.perDay: 5]), clientID: fixture.client.id)
        let alerts = endpoint(fixture, "billing.example.com", types: ["budget.exhausted", "budget.warning"])
        try await fixture.store.createEndpoint(alerts, keys: .generate([.v1]))
        var types: [[String]] = []
        for index in 0..<6 {
            _ = try await fixture.store.insert(try fixture.task("budget \(index)", due: 3_600), idempotency: nil)
            let claimed = try await claim(fixture, owner: "a/dispatcher/\(index)")
            types.append(claimed.map(\.type))
            try await deliver(fixture, claimed, owner: "a/dispatcher/\(index)")
        }
        #expect(types == [[], [], [], ["budget.warning"], ["budget.exhausted"], []], "4 of 5 is 80 %; the sixth is refused")
    }

    static func stored(_ endpoint: Endpoint, signatures: Set<SignatureScheme>) -> Endpoint {
        var stored = endpoint
        stored.signatures = signatures
        return stored
    }
}
