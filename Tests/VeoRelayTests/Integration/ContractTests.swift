import Foundation
import Synchronization
import Testing
@testable import VeoRelay

@Suite("OpenAPI contract", .stopsWhatItStarts)
struct ContractTests {
    /// With every optional part of the API on (stored videos).
    @Test func theDocumentDescribesExactlyTheRoutesTheRelayServes() async throws {
        let harness = try await RelayHarness.start()
        var configuration = harness.configuration
        configuration.databasePath = harness.databasePath
        let videos = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-contract-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: videos) }
        configuration.videos.directory = videos
        let routes = Mutex<[String]>([])
        let server = try await RunningServer.start { onRunning in
            let relay = try await buildRelay(configuration, logger: TestLog.logger, onServerRunning: onRunning)
            routes.withLock { $0 = relay.routes }
            return relay.application
        }
        try await server.stop()
        // The console's pages (here: the page saying it is off) are HTML for people, not API.
        let served = Set(routes.withLock { $0 }.map { route -> String in
            let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
            return "\(parts[0]) \(OpenAPIDocument.normalise(parts[1]))"
        }.filter { !$0.contains(" /console") })
        let documented = OpenAPIDocument.operations(in: try OpenAPIDocument.load())
        #expect(!documented.isEmpty)
        #expect(served == documented, "served but undocumented: \(served.subtracting(documented)); documented but not served: \(documented.subtracting(served))")
        try await harness.stop()
    }

    @Test func theDocumentIsServed() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let answer = try await APIClient(baseURL: relay.baseURL, key: nil).send(.GET, "/openapi.yaml", body: nil)
        #expect(answer.status == 200)
        #expect(answer.headers["content-type"] == "application/yaml")
        try await harness.stop(relay)
    }
}
