import Foundation
import Hummingbird

/// `GET /v1/tasks/{id}`: the relay's stored view in the upstream's task envelope. It never calls the
/// upstream, so clients may poll the relay as often as they like.
/// A watch token reads it too, but gets no `watch_url`: a token cannot mint a longer-lived one.
/// `POST /v1/tasks/{id}/cancel`: the client takes back a task the upstream has not been sent (API key only).
public struct TasksController: Sendable {
    let store: any TaskQueue & Outbox
    let cancellation: TaskCancellation
    let watchLinks: WatchLinks

    public func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.get("/tasks/:id", use: show)
        group.post("/tasks/:id/cancel", use: cancel)
    }

    /// A queued task ends `cancelled` (its `task.failed` event delivered like any other) and is never
    /// submitted; one already submitted is paid and runs on: 409. Cancelling a cancelled task again
    /// answers it as it is.
    @Sendable func cancel(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let id = try context.parameters.require("id")
        switch try await cancellation.cancel(taskID: id, scope: .client(client.id)) {
        case .cancelled:
            context.logger.info("task cancelled", metadata: ["task_id": "\(id)"])
            return try await show(request, context: context)
        case .alreadyCancelled:
            return try await show(request, context: context)
        case .finished(let state):
            throw APIError(.conflict, type: "already_finished", message: "The task already ended (\(state.rawValue)).")
        case .alreadySubmitted:
            throw Self.alreadySubmitted
        case .notFound:
            throw APIError.notFound("No task '\(id)'.")
        }
    }

    static let alreadySubmitted = APIError(.conflict, type: "already_submitted", message: """
        The task was already submitted upstream: the generation is paid and runs to completion, and the relay keeps following it.
        """)

    @Sendable func show(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let task = try await store.task(id: id, scope: .client(try context.readableOwner(ofTask: id))) else {
            throw APIError.notFound("No task '\(id)'.")
        }
        let callback = task.callbackURL == nil ? nil : try await store.callbackSummary(taskID: task.id)
            ?? CallbackSummary(state: "waiting", attempts: 0, lastStatusCode: nil, lastError: nil, nextAttemptAt: nil)
        var resource = TaskResource(task: task, callback: callback)
        if context.client != nil { resource.watchURL = watchLinks.url(taskID: task.id, clientID: task.clientID, request: request) }
        return try JSONResponse.make(.ok, Envelope(code: 200, data: resource))
    }
}

/// A task in the upstream's shape, plus the relay's own fields (`upstream_task_id`, `callback`).
struct TaskResource: Encodable {
    var id: String
    var status: String
    var progress: Int
    var result: JSONValue?
    /// The videos as events carry them: the upstream's URLs, and the relay's copies when it stores them.
    var videos: [VideoLink]
    var error: TaskError?
    var created: Int
    var completed: Int?
    var estimatedTime: Double?
    var actualTime: Double?
    var model: String
    var upstreamTaskID: String?
    var submissionAnswer: String?
    /// nil for a stream-only task.
    var callback: Callback?
    var watchURL: String?

    struct Callback: Encodable {
        var url: String
        var summary: CallbackSummary

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(url, forKey: .url)
            try summary.encode(to: encoder)
        }

        enum CodingKeys: String, CodingKey { case url }
    }

    enum CodingKeys: String, CodingKey {
        case id, status, progress, result, videos, error, created, completed, model, callback
        case estimatedTime = "estimated_time"
        case actualTime = "actual_time"
        case upstreamTaskID = "upstream_task_id"
        case submissionAnswer = "submission_answer"
        case watchURL = "watch_url"
    }

    init(task: RelayTask, callback: CallbackSummary?) {
        id = task.id
        status = task.publicStatus
        progress = task.progress
        // Held back while the relay stores the videos, as the upstream holds it back until completion.
        result = task.state == .storing ? nil : task.upstream?.result
        videos = VideoLink.links(of: task)
        error = task.error
        created = task.createdAt.unixSeconds
        completed = task.upstream?.completed ?? task.completedAt?.unixSeconds
        estimatedTime = task.upstream?.estimatedTime
        actualTime = task.upstream?.actualTime
        model = task.request.model.rawValue
        upstreamTaskID = task.upstreamTaskID
        submissionAnswer = task.submissionAnswer
        if let url = task.callbackURL, let callback { self.callback = Callback(url: url, summary: callback) }
    }
}
