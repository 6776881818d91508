import AsyncHTTPClient
import Foundation
import NIOCore
@testable import VeoRelay

/// A Server-Sent Events client over AsyncHTTPClient, as an app would open the relay's event stream.
struct EventStreamClient: Sendable {
    typealias Message = ServerSentEvent

    struct Opened: Sendable {
        var status: Int
        var headers: [String: String]
        /// Every message until the server ends the stream.
        var messages: AsyncThrowingStream<Message, any Error>
    }

    static func open(_ url: String, apiKey: String? = RelayHarness.apiKey, headers: [(String, String)] = []) async throws -> Opened {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .minutes(5))
        let (messages, continuation) = AsyncThrowingStream<Message, any Error>.makeStream()
        let body = response.body
        let reader = Task {
            do {
                var parser = ServerSentEventParser()
                for try await buffer in body {
                    for message in parser.feed(String(buffer: buffer)) { continuation.yield(message) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return Opened(status: Int(response.status.code), headers: Dictionary(response.headers.map { ($0.name.lowercased(), $0.value) }) { $1 },
                      messages: messages)
    }
}

extension AsyncThrowingStream<ServerSentEvent, any Error> {
    /// The event messages (comments left out) until the stream ends.
    func events() async throws -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for try await message in self where message.event != nil { events.append(message) }
        return events
    }
}
