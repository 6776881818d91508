import AsyncHTTPClient
import Foundation
import NIOCore
@testable import VeoRelay

/// A Server-Sent Events client over AsyncHTTPClient, as an app would open the relay's event stream.
struct EventStreamClient: Sendable {
    struct Message: Sendable, Equatable {
        var id: String?
        var event: String?
        var data: String?
        /// The text of a comment line (`: …`), such as a heartbeat.
        var comment: String?
    }

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
                var pending = ""
                for try await buffer in body {
                    pending += String(buffer: buffer)
                    while let end = pending.range(of: "\n\n") {
                        let block = pending[..<end.lowerBound]
                        pending = String(pending[end.upperBound...])
                        continuation.yield(parse(block))
                    }
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

    static func parse(_ block: Substring) -> Message {
        var message = Message()
        for line in block.split(separator: "\n") {
            if line.hasPrefix(":") {
                message.comment = line.dropFirst().trimmingCharacters(in: .whitespaces)
                continue
            }
            let parts = line.split(separator: ":", maxSplits: 1)
            let field = String(parts[0]), value = parts.count > 1 ? String(parts[1].drop { $0 == " " }) : ""
            switch field {
            case "id": message.id = value
            case "event": message.event = value
            case "data": message.data = message.data.map { $0 + "\n" + value } ?? value
            default: break
            }
        }
        return message
    }
}

extension AsyncThrowingStream<EventStreamClient.Message, any Error> {
    /// The event messages (comments left out) until the stream ends.
    func events() async throws -> [EventStreamClient.Message] {
        var events: [EventStreamClient.Message] = []
        for try await message in self where message.event != nil { events.append(message) }
        return events
    }
}
