import Foundation
import Testing
@testable import VeoRelay

@Suite("The relay follows its configuration", .stopsWhatItStarts)
struct ConfigurationFollowTests {
    @Test(arguments: TestStores.all)
    func aKeyRemovedFromTheConfigurationIsRefusedAfterARestart(store kind: TestStores.Kind) async throws {
        let harness = try await RelayHarness.start(database: try await kind.freshLocation())
        let first = try await harness.startRelay()
        let other = APIClient(baseURL: first.baseURL, key: RelayHarness.otherAPIKey)
        let taskID = try await other.submit(harness.request())
        try await first.stop()

        let second = try await harness.startRelay { $0.apiKeys = [RelayHarness.apiKey] }
        #expect(try await APIClient(baseURL: second.baseURL, key: RelayHarness.otherAPIKey).get("/v1/tasks/\(taskID)").status == 401)
        #expect(try await APIClient(baseURL: second.baseURL).get("/v1/tasks/nope").status == 404, "the remaining key still works")
        try await second.stop()

        let third = try await harness.startRelay()
        #expect(try await APIClient(baseURL: third.baseURL, key: RelayHarness.otherAPIKey).get("/v1/tasks/\(taskID)").status == 200,
                "a key configured again works again")
        try await harness.stop(third)
    }

    /// A resolver that never answers: intake refuses the URL once the deadline passes instead of
    /// holding the request (and a thread) for as long as DNS hangs.
    @Test func aCallbackHostThatDoesNotResolveInTimeIsRefused() async throws {
        struct SilentResolver: HostResolver {
            func addresses(of host: String) async throws -> [[UInt8]] {
                await Latch().wait()
                return []
            }
        }
        let harness = try await RelayHarness.start(tune: { $0.callbacks.resolveTimeout = .milliseconds(200) })
        let relay = try await harness.startRelay(resolver: SilentResolver())
        let answer = try await APIClient(baseURL: relay.baseURL).post("/v1/videos/generations",
                                                                      json: harness.request(extra: ["callback_url": .string("https://hooks.example.com/x")]))
        #expect(answer.status == 400)
        #expect(answer.json["error"]?["param"] == .string("callback_url"))
        #expect(answer.json["error"]?["message"]?.stringValue?.contains("did not resolve in time") == true)
        try await harness.stop(relay)
    }
}
