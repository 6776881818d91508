import Foundation
import Hummingbird

/// The attempt log of every destination, dead letters and replay:
/// `GET /v1/tasks/{id}/deliveries`, `GET /v1/deliveries?state=failed`,
/// `POST /v1/tasks/{id}/redeliver[?event_id=…&destination=callback|ep_…]`.
public struct DeliveriesController: Sendable {
    let store: any Outbox
    let clock: any WallClock
    let dispatcherWake: WakeSignal

    static let maxListed = 500

    public func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.get("/tasks/:id/deliveries", use: log)
        group.get("/deliveries", use: list)
        group.post("/tasks/:id/redeliver", use: redeliver)
    }

    @Sendable func log(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let id = try context.parameters.require("id")
        guard let records = try await store.deliveryLog(taskID: id, scope: .client(client.id)) else {
            throw APIError.notFound("No task '\(id)'.")
        }
        return try JSONResponse.make(.ok, Envelope(code: 200, data: records.map(DeliveryResource.init)))
    }

    @Sendable func list(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let stateName = request.uri.queryParameters.get("state") ?? DeliveryState.failed.rawValue
        guard let state = DeliveryState(rawValue: stateName) else {
            throw APIError.invalidRequest("state must be one of 'pending', 'delivered', 'failed', 'gone'.", param: "state")
        }
        let limitText = request.uri.queryParameters.get("limit") ?? "100"
        guard let limit = Int(limitText), (1...Self.maxListed).contains(limit) else {
            throw APIError.invalidRequest("limit must be an integer from 1 to \(Self.maxListed).", param: "limit")
        }
        let records = try await store.deliveries(scope: .client(client.id), state: state, limit: limit)
        return try JSONResponse.make(.ok, Envelope(code: 200, data: records.map(DeliveryResource.init)))
    }

    @Sendable func redeliver(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let id = try context.parameters.require("id")
        let query = request.uri.queryParameters
        let target = query.get("destination").map(DeliveryTarget.init(named:))
        let records = try await store.redeliver(taskID: id, scope: .client(client.id), eventID: query.get("event_id"), target: target,
                                                now: clock.now())
        guard let first = records.first else {
            throw APIError.notFound("No task '\(id)' with an event delivered to \(target.map { "'\($0)'" } ?? "any destination").")
        }
        dispatcherWake.signal()
        context.logger.info("redelivery requested", metadata: ["task_id": "\(id)", "event_id": "\(first.eventID)",
                                                               "destinations": "\(records.map(\.key.target.description))"])
        return try JSONResponse.make(.accepted, Envelope(code: 202, data: records.map(DeliveryResource.init)))
    }
}

/// An event's delivery to one destination, as the API shows it (times in unix seconds, like the upstream's).
struct DeliveryResource: Encodable {
    var eventID: String
    var taskID: String?
    /// `callback` (the task's `callback_url`) or the endpoint's id.
    var destination: String
    var type: String
    var state: String
    var attempts: Int
    var nextAttemptAt: Int?
    var lastStatusCode: Int?
    var lastError: String?
    var url: String
    var createdAt: Int
    var deliveredAt: Int?
    var attemptLog: [Attempt]?

    struct Attempt: Encodable {
        var attemptedAt: Int
        var statusCode: Int?
        var latencyMs: Int
        var error: String?
        var responseExcerpt: String?

        enum CodingKeys: String, CodingKey {
            case error
            case attemptedAt = "attempted_at"
            case statusCode = "status_code"
            case latencyMs = "latency_ms"
            case responseExcerpt = "response_excerpt"
        }
    }

    enum CodingKeys: String, CodingKey {
        case type, state, attempts, destination, url
        case eventID = "event_id"
        case taskID = "task_id"
        case nextAttemptAt = "next_attempt_at"
        case lastStatusCode = "last_status_code"
        case lastError = "last_error"
        case createdAt = "created_at"
        case deliveredAt = "delivered_at"
        case attemptLog = "attempt_log"
    }

    init(_ record: DeliveryRecord) {
        eventID = record.eventID
        taskID = record.taskID
        destination = record.key.target.description
        type = record.type
        state = record.state.rawValue
        attempts = record.attempts
        nextAttemptAt = record.nextAttemptAt?.unixSeconds
        lastStatusCode = record.lastStatusCode
        lastError = record.lastError
        url = record.url
        createdAt = record.createdAt.unixSeconds
        deliveredAt = record.deliveredAt?.unixSeconds
        attemptLog = record.attemptLog.isEmpty ? nil : record.attemptLog.map {
            Attempt(attemptedAt: $0.attemptedAt.unixSeconds, statusCode: $0.statusCode,
                    latencyMs: ExternalNumber.boundedInteger(($0.latency * 1000).rounded(), maximum: 86_400_000) ?? 0, error: $0.error, responseExcerpt: $0.responseExcerpt)
        }
    }
}
