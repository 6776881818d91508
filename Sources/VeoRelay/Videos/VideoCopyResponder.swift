import Foundation
import Hummingbird

/// Answers for the stored copies of a task's videos from the store, once the caller (the API or the
/// console) has decided who may read the task.
public struct VideoCopyResponder: Sendable {
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
