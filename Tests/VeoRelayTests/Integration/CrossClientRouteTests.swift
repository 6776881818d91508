import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing
@testable import VeoRelay

/// Every route of the OpenAPI document that names an object, tried on one client's objects with another
/// client's key and with the watch token of another task: never an answer of 2xx, never the object.
/// The owner's own reads of the same routes succeed, so each refusal is about who asks, not what exists.
@Suite("Every route against another client's objects", .stopsWhatItStarts)
struct CrossClientRouteTests {
    @Test func anotherClientsKeyOrAnotherTasksWatchTokenReachesNothing() async throws {
        let videos = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-cross-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: videos) }
        let harness = try await RelayHarness.start(tune: { $0.videos.directory = videos })
        let relay = try await harness.startRelay()
        let alice = APIClient(baseURL: relay.baseURL)
        let bob = APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey)
        let anonymous = APIClient(baseURL: relay.baseURL, key: nil)

        // Alice's objects: a finished task with a stored video and a delivered webhook, and an endpoint.
        let task = try await alice.submit(harness.request(prompt: "alice's own"))
        _ = try await harness.receiver.next()
        let created = try await alice.post("/v1/endpoints", json: .object(["url": .string(harness.receiverServer.baseURL + "/endpoint")]))
        let endpoint = try #require(created.json["data"]?["id"]?.stringValue)
        try await eventually("the stored video and the delivery") {
            let data = try await alice.get("/v1/tasks/\(task)").json["data"]
            return data?["videos"]?[0]?["stored_url"] != nil && data?["callback"]?["state"] == .string("delivered")
        }
        // Bob's own task: its watch token opens that task only.
        let bobs = try await bob.submit(harness.request(prompt: "bob's own"))
        let watchURL = try #require(try await bob.get("/v1/tasks/\(bobs)").json["data"]?["watch_url"]?.stringValue)
        let token = try #require(URLComponents(string: watchURL)?.queryItems?.first { $0.name == "watch_token" }?.value)

        let operations = OpenAPIDocument.operations(in: try OpenAPIDocument.load()).filter { $0.contains("{}") }.sorted()
        #expect(operations.count >= 11, "\(operations)")
        for operation in operations {
            let (method, path) = try Self.split(operation)
            let filled = Self.fill(path, task: task, endpoint: endpoint)
            let body: Data? = [.POST, .PATCH].contains(method) ? Data("{}".utf8) : nil
            let asBob = try await bob.send(method, filled, body: body)
            #expect([401, 403, 404].contains(asBob.status), "\(operation) with another client's key: \(asBob.status) \(asBob.json)")
            // A refusal may repeat the id asked for; it carries nothing of the object.
            #expect(asBob.json["data"] == nil && !"\(asBob.json)".contains("alice's own") && !"\(asBob.json)".contains("/endpoint\""),
                    "\(operation) gave away something of the object: \(asBob.json)")
            let asWatcher = try await anonymous.send(method, filled + "?watch_token=\(token)", body: body)
            #expect([401, 403, 404].contains(asWatcher.status), "\(operation) with another task's watch token: \(asWatcher.status)")
            if method == .GET, !path.hasSuffix("/events") {
                #expect((200..<300).contains(try await alice.send(method, filled, body: nil).status), "\(operation) for its owner")
            }
        }
        // Lists hold only the caller's own objects.
        for list in ["/v1/endpoints", "/v1/deliveries", "/v1/deliveries?state=delivered", "/v1/signing-keys", "/v1/usage?group_by=model"] {
            let answer = try await bob.get(list)
            #expect(answer.status == 200 && !"\(answer.json)".contains(task) && !"\(answer.json)".contains(endpoint), "\(list): \(answer.json)")
        }
        try await harness.stop(relay)
    }

    static func split(_ operation: String) throws -> (HTTPMethod, String) {
        let parts = operation.split(separator: " ", maxSplits: 1).map(String.init)
        return (HTTPMethod(rawValue: parts[0]), parts[1])
    }

    /// The path with its placeholders filled: a task's or an endpoint's id, then a video's index.
    static func fill(_ path: String, task: String, endpoint: String) -> String {
        var filled = path
        let object = path.hasPrefix("/v1/endpoints") ? endpoint : task
        if let first = filled.range(of: "{}") { filled.replaceSubrange(first, with: object) }
        if let second = filled.range(of: "{}") { filled.replaceSubrange(second, with: "0") }
        return filled
    }
}
