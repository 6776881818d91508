import Foundation
import Testing
@testable import VeoRelay

/// The stop switch: submissions paused for one client or all, on every instance on the database.
@Suite("Stop switch", .stopsWhatItStarts)
struct PauseTests {
    static let otherClientID = ClientBootstrap.configuredPrefix + APIKey.hash(RelayHarness.otherAPIKey).prefix(12)

    /// Two relays on one database. While client A is paused, client B's later task goes out: claims
    /// take tasks in due order, so A's earlier one was passed over by the claim, not missed by chance.
    /// Paused for all, the claim every submitter runs finds nothing; resumed, everything goes out.
    @Test(arguments: TestStores.all)
    func pausedTasksWaitOnEveryInstanceAndGoOutOnResume(store kind: TestStores.Kind) async throws {
        let harness = try await RelayHarness.start(database: try await kind.freshLocation())
        let capture = LogCapture()
        let first = try await harness.startRelay(instance: "relay-a", logger: capture.logger)
        let second = try await harness.startRelay(instance: "relay-b")
        let store = try await StoreLocation.open(harness.databasePath, logger: TestLog.logger, deadline: TestStores.deadline)
        var clientB = APIClient(baseURL: second.baseURL)
        clientB.key = RelayHarness.otherAPIKey
        let clientA = APIClient(baseURL: first.baseURL)

        try await store.pauseSubmissions(.client(RelayHarness.clientID), at: Date())
        try await capture.line(containing: "submissions paused", "client \(RelayHarness.clientID)")
        let waiting = try await clientA.submit(harness.request(prompt: "A, paused"))
        let passing = try await clientB.submit(harness.request(prompt: "B, after A"))
        let delivered = try await harness.receiver.next()[0]
        #expect(delivered.json["data"]?["task_id"] == .string(passing))
        #expect(harness.simulator.submissionsByPrompt["A, paused"] == nil, "a paused client's task reached the upstream")
        #expect(try await clientA.get("/v1/tasks/\(waiting)").json["data"]?["status"] == .string("pending"), "accepted and waiting")

        try await store.pauseSubmissions(.allClients, at: Date())
        #expect(try await store.resumeSubmissions(.client(RelayHarness.clientID)))
        let later = try await clientB.submit(harness.request(prompt: "B, all paused"))
        let probe = Lease(owner: "probe/submitter/1", expiresAt: Date().addingTimeInterval(60))
        #expect(try await store.claimTasks(.submission(), now: Date().addingTimeInterval(60), limit: 10, lease: probe).isEmpty,
                "paused for all, the submission claim takes nothing")
        #expect(try await store.submissionPauses().map(\.scope) == [.allClients])

        #expect(try await store.resumeSubmissions(.allClients))
        let finished = try await harness.receiver.next(2)
        #expect(Set(finished.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == [waiting, later])
        #expect(harness.simulator.submissionsByPrompt == ["A, paused": 1, "B, after A": 1, "B, all paused": 1])
        #expect(try await !store.resumeSubmissions(.allClients), "nothing left to resume")
        store.close()
        try await harness.stop(first, second)
    }
}
