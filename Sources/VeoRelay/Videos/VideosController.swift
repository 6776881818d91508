import Foundation
import Hummingbird

/// `GET /v1/tasks/{id}/videos/{index}`: a stored copy, to the task's own client (API key) or the
/// holder of its watch token, so a page can play it with a plain `<video src>`. Another client's key
/// finds no such task (404).
struct VideosController: Sendable {
    let store: any TaskQueue
    let files: VideoCopyResponder

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
