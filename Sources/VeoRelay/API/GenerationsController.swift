import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Metrics

/// `POST /v1/videos/generations`: validate, commit, answer — in that order, so an accepted task is
/// on disk before the client hears about it.
public struct GenerationsController: Sendable {
    /// Tasks accepted together are committed in one transaction, each answered once it is on disk.
    let inserts: GroupCommit<TaskInsertion, InsertOutcome>
    let validator: RequestValidator
    let callbackGuard: CallbackGuard
    let clock: any WallClock
    let submitterWake: WakeSignal
    let maxBodyBytes: Int
    let watchLinks: WatchLinks

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
        let json: JSONValue
        let relayRequest: RelayRequest
        do {
            json = try validator.parse(Data(buffer: body))
            relayRequest = try validator.validate(json)
            try await callbackGuard.check(relayRequest)
        } catch {
            throw APIError.validation(error)
        }
        var task = RelayTask(clientID: client.id, request: relayRequest, now: clock.now())
        task.traceParent = TaskTrace.currentParent()
        switch try await inserts.submit(TaskInsertion(task, idempotency: try Self.idempotencyKey(request, json: json))) {
        case .created(let remaining):
            Counter(label: "veo_relay_tasks_accepted_total").increment()
            UsageMetrics.count("accepted", of: task)
            context.logger.info("accepted", metadata: ["task_id": "\(task.id)", "client_id": "\(client.id)", "model": "\(task.request.model.rawValue)"])
            submitterWake.signal()
            var response = try Self.submitted(task.id, watchURL: watchLinks.url(taskID: task.id, clientID: client.id, request: request))
            BudgetHeaders.add(remaining, to: &response.headers)
            return response
        case .replayed(let existing):
            var response = try Self.submitted(existing, watchURL: watchLinks.url(taskID: existing, clientID: client.id, request: request))
            response.headers[Self.replayedHeader] = "true"
            return response
        case .conflict:
            throw APIError(.conflict, type: "idempotency_error",
                           message: "This Idempotency-Key was already used with a different request body.", param: "Idempotency-Key")
        case .overBudget(let refusal):
            UsageMetrics.count("refused", of: task)
            context.logger.info("over budget", metadata: ["client_id": "\(client.id)", "limit": "\(refusal.limit.rawValue)"])
            throw APIError.overBudget(refusal, now: task.createdAt)
        }
    }

    static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!
    static let maxIdempotencyKeyLength = 255

    /// The answer to an accepted generation (the upstream's envelope, plus the task's `watch_url`).
    public static func submitted(_ taskID: String, watchURL: String?) throws -> Response {
        try JSONResponse.make(.ok, Envelope(code: 200, data: [SubmittedEntry(status: "submitted", taskID: taskID, watchURL: watchURL)]))
    }

    /// The request's `Idempotency-Key`, fingerprinted with its body (key order and spacing ignored).
    static func idempotencyKey(_ request: Request, json: JSONValue) throws -> IdempotencyKey? {
        guard let key = request.headers[idempotencyHeader] else { return nil }
        guard (1...maxIdempotencyKeyLength).contains(key.utf8.count) else {
            throw APIError.invalidRequest("Idempotency-Key must be 1 to \(maxIdempotencyKeyLength) characters.", param: "Idempotency-Key")
        }
        let canonical = try json.canonicalData()
        return IdempotencyKey(key: key, fingerprint: SHA256.hash(data: canonical).hexString)
    }

    struct SubmittedEntry: Codable {
        var status: String
        var taskID: String
        var watchURL: String?

        enum CodingKeys: String, CodingKey {
            case status
            case taskID = "task_id"
            case watchURL = "watch_url"
        }
    }
}
