import AsyncHTTPClient
import Foundation
import Testing

@Suite("Server scope", .stopsWhatItStarts)
struct ServerScopeTests {
    /// A GET that leaves no connection open (which would hold the server's graceful stop).
    static func status(of url: String) async throws -> UInt {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Connection", value: "close")
        return try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code
    }

    /// A test that fails half-way (a `#require`, a thrown error) leaves no server of its own running.
    @Test func whatATestStartedIsStoppedWhenItFails() async throws {
        var url = ""
        await #expect(throws: TestFailure.self) {
            try await ServerScope.run {
                let receiver = try await WebhookReceiver().start()
                url = receiver.baseURL + "/hooks"
                #expect(try await Self.status(of: url) == 404, "it answers while the test runs (GET: no such route)")
                throw TestFailure("a failing #require")
            }
        }
        await #expect(throws: (any Error).self, "nothing answers once the scope has ended") { _ = try await Self.status(of: url) }
    }
}
