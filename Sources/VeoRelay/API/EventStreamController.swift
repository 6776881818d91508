import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET /v1/tasks/{id}/events`: the task's events as Server-Sent Events — first those it already
/// has, then each new one, until the terminal event. Each message carries the webhook's id, type and
/// exact body; `Last-Event-ID` resumes after an event. Graceful shutdown ends every stream, so clients
/// reconnect (to another instance) with `Last-Event-ID`.
public struct EventStreamController: Sendable {
    let store: any TaskQueue & EventLog
    let feed: EventFeed

    public init(store: any TaskQueue & EventLog, feed: EventFeed) {
        self.store = store
        self.feed = feed
    }

    public func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.get("/tasks/:id/events", use: stream)
    }

    static let lastEventIDHeader = HTTPField.Name("Last-Event-ID")!
    /// Asks proxies such as nginx not to buffer the stream.
    static let accelBufferingHeader = HTTPField.Name("X-Accel-Buffering")!

    @Sendable func stream(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let owner = try context.readableOwner(ofTask: id)
        guard let task = try await store.task(id: id, scope: .client(owner)) else { throw APIError.notFound("No task '\(id)'.") }
        let types = try Self.types(request.uri.queryParameters.get("types"))
        var after = 0
        if let lastID = request.headers[Self.lastEventIDHeader] ?? request.uri.queryParameters.get("last_event_id") {
            after = try await store.eventSequence(eventID: lastID, taskID: id) ?? 0
        }
        let watch: EventFeed.Watch
        do {
            watch = try await feed.watch(taskID: id, clientID: task.clientID, after: after)
        } catch is EventFeed.LimitReached {
            throw APIError(.tooManyRequests, type: "rate_limit_error",
                           message: "This client has as many open event streams as it may; close one first.")
        }
        let feed = self.feed
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", Self.accelBufferingHeader: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                try await withGracefulShutdownHandler {
                    try await writer.write(ByteBuffer(string: ": veo-relay event stream for \(id)\nretry: 2000\n\n"))
                    items: for await item in watch.items {
                        switch item {
                        case .heartbeat:
                            try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                        case .event(let event):
                            if types.contains(event.type) { try await writer.write(Self.message(event)) }
                            if event.isTerminal { break items }
                        }
                    }
                } onGracefulShutdown: {
                    Task { await feed.close(watch) }
                }
            } catch {
                await feed.close(watch)
                throw error
            }
            await feed.close(watch)
            try await writer.finish(nil)
        })
    }

    /// One SSE message: the event's id, type, and body (one `data:` line per line of it).
    static func message(_ event: StreamEvent) -> ByteBuffer {
        let data = String(decoding: event.payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { "data: \($0)\n" }.joined()
        return ByteBuffer(string: "id: \(event.id)\nevent: \(event.type)\n\(data)\n")
    }

    /// The `types` filter: a comma-separated list of event types; all of them when absent.
    static func types(_ parameter: String?) throws -> Set<String> {
        let all = Set(WebhookEventType.allCases.map(\.rawValue))
        guard let parameter else { return all }
        let names = Set(parameter.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard !names.isEmpty, names.isSubset(of: all) else {
            throw APIError.invalidRequest("types must be a comma-separated list of \(RequestValidator.list(all.sorted())).", param: "types")
        }
        return names
    }
}
