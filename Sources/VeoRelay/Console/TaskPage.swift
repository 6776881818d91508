import Foundation
import Hummingbird

/// `/console/tasks/{id}`: one task with its request, upstream answer, events and every delivery's
/// attempts; its stored videos played; Replay of an event (to one destination or all) and Cancel.
struct TaskPage: Sendable {
    let store: any TaskQueue & EventLog & Outbox
    let cancellation: TaskCancellation
    let videos: VideoCopyResponder?
    let pages: ConsolePages
    let clock: any WallClock
    let dispatcherWake: WakeSignal

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("tasks/:id", use: show)
        console.get("tasks/:id/videos/:index", use: video)
        console.post("tasks/:id/replay", use: replay)
        console.post("tasks/:id/cancel", use: cancel)
    }

    @Sendable func show(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let signedIn = try context.signedIn
        let id = try context.parameters.require("id")
        guard let task = try await store.task(id: id, scope: .allClients) else { return pages.notFound("No such task", signedIn: signedIn) }
        let events = try await store.streamEvents(taskID: id, after: 0)
        let deliveries = try await store.deliveryLog(taskID: id, scope: .allClients) ?? []
        let view = try TaskView(task: task, events: events, deliveries: deliveries, csrf: signedIn.csrf)
        return pages.page("Task \(id)", "task", view, signedIn: signedIn, notice: request.uri.queryParameters.get("notice"))
    }

    /// A stored video for the page's player.
    @Sendable func video(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let videos, let task = try await store.task(id: id, scope: .allClients) else { throw APIError.notFound("No task '\(id)'.") }
        return try await videos.respond(task, indexText: try context.parameters.require("index"), request: request, context: context.parent)
    }

    @Sendable func replay(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let signedIn = try context.signedIn
        let id = try context.parameters.require("id")
        let target = signedIn.form?.destination.map(DeliveryTarget.init(named:))
        guard let record = try await store.redeliver(taskID: id, scope: .allClients, eventID: signedIn.form?.event, target: target,
                                                     now: clock.now()).first else {
            return pages.notFound("No such delivery", signedIn: signedIn)
        }
        dispatcherWake.signal()
        context.logger.info("redelivery requested from the console", metadata: ["task_id": "\(id)", "event_id": "\(record.eventID)"])
        return ConsolePages.redirect("/console/tasks/\(id)", notice: "Replay of \(record.eventID) to \(record.key.target) queued.")
    }

    @Sendable func cancel(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let signedIn = try context.signedIn
        let id = try context.parameters.require("id")
        let said: String
        switch try await cancellation.cancel(taskID: id, scope: .allClients) {
        case .notFound: return pages.notFound("No such task", signedIn: signedIn)
        case .cancelled: said = "Cancelled: it will not be submitted."
        case .alreadyCancelled, .alreadySubmitted, .finished: said = "Not cancelled: the task is no longer waiting for submission."
        }
        context.logger.notice("cancel from the console", metadata: ["task_id": "\(id)", "outcome": "\(said)"])
        return ConsolePages.redirect("/console/tasks/\(id)", notice: said)
    }
}

struct TaskView {
    struct Event {
        var sequence: Int
        var type, id, at: String
    }

    struct Delivery {
        struct Attempt {
            var at, status, latency, error, excerpt: String
        }

        var eventID, taskID, type, state, destination, url, csrf: String
        var attempts: Int
        var nextAttempt: String?
        // Mustache would read `attempts` for the section; the log has its own name.
        var attempts_: [Attempt]
    }

    var taskID, state, clientID, upstreamTaskID, upstreamStatus, callbackURL, created, completed, error, request, csrf: String
    var progress: Int
    /// Still queued: the console offers to cancel it.
    var cancellable: Bool
    var metadata, upstream, submissionAnswer: String?
    var events: [Event]
    var deliveries: [Delivery]
    /// Stored videos the page plays; a video without a copy shows why.
    var videos: [Video]

    struct Video {
        var index: Int
        var stored: Bool
        var storeError: String?
    }

    static let prettyEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    init(task: RelayTask, events: [StreamEvent], deliveries: [DeliveryRecord], csrf: String) throws {
        func pretty(_ value: some Encodable) throws -> String {
            String(decoding: try Self.prettyEncoder.encode(value), as: UTF8.self)
        }
        taskID = task.id
        state = task.state.rawValue
        cancellable = task.state == .queued
        videos = (task.videoCopies ?? []).map { Video(index: $0.index, stored: $0.storedURL != nil, storeError: $0.storeError) }
        self.csrf = csrf
        clientID = task.clientID
        upstreamTaskID = task.upstreamTaskID ?? ""
        upstreamStatus = task.upstream?.status ?? task.publicStatus
        progress = task.progress
        callbackURL = task.callbackURL ?? "none (stream only)"
        created = ConsolePages.time(task.createdAt)
        completed = ConsolePages.time(task.completedAt)
        error = task.error.map { "\($0.code): \($0.message)" } ?? ""
        request = try pretty(task.request)
        metadata = try task.metadata.map(pretty)
        upstream = try task.upstream.map(pretty)
        submissionAnswer = task.submissionAnswer
        self.events = events.map { event in
            let at = (try? JSONValue.parse(event.payload))?["timestamp"]?.stringValue ?? ""
            return Event(sequence: event.sequence, type: event.type, id: event.id, at: at)
        }
        self.deliveries = deliveries.map { record in
            Delivery(eventID: record.eventID, taskID: record.taskID ?? "", type: record.type, state: record.state.rawValue,
                     destination: record.key.target.description, url: record.url, csrf: csrf, attempts: record.attempts,
                     nextAttempt: record.state == .pending ? record.nextAttemptAt.map { ConsolePages.time($0) } : nil,
                     attempts_: record.attemptLog.map { attempt in
                         .init(at: ConsolePages.time(attempt.attemptedAt), status: attempt.statusCode.map(String.init) ?? "—",
                               latency: String(Int(attempt.latency * 1_000)), error: attempt.error ?? "", excerpt: attempt.responseExcerpt ?? "")
                     })
        }
    }
}

