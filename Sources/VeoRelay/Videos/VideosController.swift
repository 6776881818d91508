import Foundation
import Hummingbird

/// Answers for the stored copies of a task's videos from the store, once the caller (the API or the
/// console) has decided who may read the task.
public struct StoredVideoFiles: Sendable {
    let store: any VideoStore

    init(store: any VideoStore) {
        self.store = store
    }

    /// Video `indexText` of `task`: 404 when it has no such copy, 410 when retention deleted it.
    func respond(_ task: RelayTask, indexText: String, request: Request, context: RelayRequestContext) async throws -> Response {
        guard let index = Int(indexText), let copy = task.videoCopies?.first(where: { $0.index == index }) else {
            throw APIError.notFound("Task '\(task.id)' has no stored video \(indexText).")
        }
        guard copy.storedURL != nil else {
            throw APIError.notFound("Task '\(task.id)' has no stored copy of video \(index): \(copy.storeError ?? "not stored").")
        }
        do {
            return try await store.respond(taskID: task.id, index: index, to: request, context: context)
        } catch let error as HTTPError where error.status == .notFound {
            throw APIError(.gone, type: "video_expired", message: """
                The stored copy of video \(index) of task '\(task.id)' was deleted after the retention period; the task's record remains.
                """)
        }
    }
}

/// `GET /v1/tasks/{id}/videos/{index}`: a stored copy, to the task's own client (API key) or the
/// holder of its watch token, so a page can play it with a plain `<video src>`. Another client's key
/// finds no such task (404).
struct VideosController: Sendable {
    let store: any TaskQueue
    let files: StoredVideoFiles

    func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.get("/tasks/:id/videos/:index", use: show)
    }

    @Sendable func show(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let task = try await store.task(id: id, scope: .client(try context.readableOwner(ofTask: id))) else {
            throw APIError.notFound("No task '\(id)'.")
        }
        return try await files.respond(task, indexText: try context.parameters.require("index"), request: request, context: context)
    }
}
