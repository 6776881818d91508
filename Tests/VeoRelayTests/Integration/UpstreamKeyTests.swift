import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// Several upstream keys: submissions spread over them within each key's `max_in_flight`, every poll is
/// made with its task's own key, a held key leaves the others working, and a client's own key carries
/// that client's tasks only.
@Suite("Upstream keys", .stopsWhatItStarts)
struct UpstreamKeyTests {
    static let secondSecret = "sk-second-key-2222"
    static let ownSecret = "sk-client-own-3333"
    static let otherClientID = ClientBootstrap.configuredPrefix + APIKey.hash(RelayHarness.otherAPIKey).prefix(12)

    /// Adds `keys` to the harness's database before a relay starts (as `veo-relay upstream keys add` does).
    static func add(_ keys: [UpstreamKey], to harness: RelayHarness) async throws {
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { store.close() }
        for key in keys { #expect(try await store.addUpstreamKey(key)) }
    }

    @Test func twoKeysWithinTheirLimitsShareTheWorkAndARevokedOneKeepsItsTasks() async throws {
        var simulator = SimulatorConfiguration(timeScale: 0.002)
        simulator.maxConcurrentJobsPerKey = 2
        simulator.holdJobs = true
        let clock = ShiftedClock()
        let harness = try await RelayHarness.start(simulator: simulator, clock: clock) { $0.engine.configuredKeyMaxInFlight = 2 }
        try await Self.add([UpstreamKey(name: "second", secret: Self.secondSecret, maxInFlight: 2, createdAt: Date())], to: harness)
        let capture = LogCapture()
        let relay = try await harness.startRelay(logger: capture.logger)
        let api = APIClient(baseURL: relay.baseURL)

        var ids: [String] = []
        for n in 0..<6 { ids.append(try await api.submit(harness.request(prompt: "two keys \(n)"))) }
        try await eventually("both keys full") { harness.simulator.totalSubmissions == 4 }
        #expect(harness.simulator.submissionsByKey == [RelayHarness.upstreamKey: 2, Self.secondSecret: 2])
        #expect(harness.simulator.concurrencyRefusals == 0, "no key was sent a third job")

        // The second key is revoked while its two jobs run: their polls wait with it, and the two tasks
        // never sent go to the other key as it frees up. Nothing sent is sent again.
        harness.simulator.reconfigure { $0.refusingKeys[Self.secondSecret] = .revokedKey }
        try await capture.line(containing: "refuses work")
        harness.simulator.releaseJobs()
        let first = try await harness.receiver.next(4, within: .seconds(60))
        #expect(first.allSatisfy { $0.type == "task.succeeded" })
        #expect(harness.simulator.submissionsByKey == [RelayHarness.upstreamKey: 4, Self.secondSecret: 2])
        let waiting = Set(ids).subtracting(first.compactMap { $0.json["data"]?["task_id"]?.stringValue })
        #expect(waiting.count == 2)
        for id in waiting {
            let task = try await api.get("/v1/tasks/\(id)")
            #expect([.string("pending"), .string("processing")].contains(task.json["data"]?["status"]), "a revoked key's task waits: \(task.json)")
        }

        // The key is put right: at its next try the polls find the jobs done.
        harness.simulator.reconfigure { $0.refusingKeys = [:] }
        clock.advance(by: AccountProbes.first)
        let rest = try await harness.receiver.next(2, within: .seconds(60))
        #expect(Set(rest.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == waiting)
        #expect(rest.allSatisfy { $0.type == "task.succeeded" })
        #expect(harness.simulator.totalSubmissions == 6 && harness.simulator.maxSubmissionsOfOneRequest == 1, "each paid once")
        #expect(harness.simulator.concurrencyRefusals == 0)
        #expect(harness.simulator.foreignPolls == 0, "every poll with its task's own key")
        #expect(Set(harness.simulator.pollsByKey.keys) == [RelayHarness.upstreamKey, Self.secondSecret])
        // Usage by key: what each key paid for, by its name.
        let usage = try await api.get("/v1/usage?group_by=upstream_key")
        #expect(usage.json["data"]?["usage"] == .array([
            .object(["upstream_key": .string("default"), "generations": .int(4), "video_seconds": .int(32), "succeeded": .int(4), "failed": .int(0),
                     "cancelled": .int(0)]),
            .object(["upstream_key": .string("second"), "generations": .int(2), "video_seconds": .int(16), "succeeded": .int(2), "failed": .int(0),
                     "cancelled": .int(0)])]), "\(usage.json)")
        try await harness.stop(relay)
    }

    @Test func aClientsOwnKeyCarriesItsTasksOnlyAndItsHoldHoldsOnlyThem() async throws {
        var simulator = SimulatorConfiguration(timeScale: 0.002)
        simulator.refusingKeys = [Self.ownSecret: .balance]
        let clock = ShiftedClock()
        let harness = try await RelayHarness.start(simulator: simulator, clock: clock)
        try await Self.add([UpstreamKey(name: "own", secret: Self.ownSecret, clientID: Self.otherClientID, createdAt: Date())], to: harness)
        let capture = LogCapture()
        let relay = try await harness.startRelay(logger: capture.logger)
        let mine = APIClient(baseURL: relay.baseURL)
        let theirs = APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey)
        // Both clients listen for the upstream's standing; only the one whose key is held is told.
        for client in [mine, theirs] {
            let endpoint = try await client.post("/v1/endpoints", json: .object([
                "url": .string(harness.receiverServer.baseURL + "/standing"),
                "event_types": .array([.string("upstream.unavailable"), .string("upstream.restored")])]))
            #expect(endpoint.status == 201, "\(endpoint.json)")
        }

        var own: [String] = []
        for n in 0..<3 { own.append(try await theirs.submit(harness.request(prompt: "own key \(n)"))) }
        var shared: [String] = []
        for n in 0..<3 { shared.append(try await mine.submit(harness.request(prompt: "shared key \(n)"))) }
        let first = try await harness.receiver.next(4, within: .seconds(60))
        let flowed = first.filter { $0.path != "/standing" }
        #expect(Set(flowed.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == Set(shared), "the other client's tasks flow")
        let unavailable = try #require(first.first { $0.path == "/standing" })
        #expect(unavailable.type == "upstream.unavailable" && unavailable.json["data"]?["key"] == .string("own"), "\(unavailable.json)")
        #expect(unavailable.json["data"]?["reason"]?.stringValue?.contains("402") == true)
        #expect(harness.simulator.submissionsByKey == [RelayHarness.upstreamKey: 3], "the held client's tasks went with no other key")
        let status = try await mine.get("/v1/tasks/\(own[0])")
        #expect(status.status == 404, "one client's task is not another's to see")
        #expect(try await theirs.get("/v1/tasks/\(own[0])").json["data"]?["status"] == .string("pending"))

        harness.simulator.reconfigure { $0.refusingKeys = [:] }
        clock.advance(by: AccountProbes.first)
        let after = try await harness.receiver.next(4, within: .seconds(60))
        #expect(Set(after.filter { $0.path != "/standing" }.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == Set(own))
        #expect(after.filter { $0.path == "/standing" }.map(\.type) == ["upstream.restored"])
        #expect(harness.simulator.submissionsByKey == [RelayHarness.upstreamKey: 3, Self.ownSecret: 3], "the simulator saw which key paid")
        #expect(harness.simulator.foreignPolls == 0)
        try await harness.stop(relay)
    }
}
