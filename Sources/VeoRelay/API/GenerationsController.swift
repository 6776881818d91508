import Foundation
import Hummingbird
import Metrics

/// `POST /v1/videos/generations`: validate, commit, answer — in that order, so an accepted task is
/// on disk before the client hears about it.
public struct GenerationsController: Sendable {
    let store: any Store
    let validator: RequestValidator
    let clock: any WallClock
    let submitterWake: WakeSignal
    let maxBodyBytes: Int

    public func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.post("/videos/generations", use: create)
    }

    @Sendable func create(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, type: "invalid_request_error", message: "The request body must be at most \(maxBodyBytes) bytes.")
        }
        let relayRequest: RelayRequest
        do {
            relayRequest = try validator.validate(body: Data(buffer: body))
        } catch {
            throw APIError.validation(error)
        }
        let task = RelayTask(clientID: client.id, request: relayRequest, now: clock.now())
        try await store.insert(task)
        Counter(label: "veo_relay_tasks_accepted_total").increment()
        context.logger.info("accepted", metadata: ["task": "\(task.id)", "client": "\(client.id)", "model": "\(task.request.model.rawValue)"])
        submitterWake.signal()
        let entry = SubmittedEntry(status: "submitted", taskID: task.id)
        return try JSONResponse.make(.ok, Envelope(code: 200, data: [entry]))
    }

    struct SubmittedEntry: Codable {
        var status: String
        var taskID: String

        enum CodingKeys: String, CodingKey {
            case status
            case taskID = "task_id"
        }
    }
}

/// The upstream's success envelope `{"code":200,"data":…}`.
struct Envelope<Data: Encodable>: Encodable {
    var code: Int
    var data: Data
}
