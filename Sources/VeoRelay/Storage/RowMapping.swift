import Foundation

/// Read access to a result row, whichever database it came from, so that both stores share one
/// mapping between rows and domain values.
public protocol StoredRow {
    func optionalText(_ column: String) throws -> String?
    func optionalReal(_ column: String) throws -> Double?
    func optionalInteger(_ column: String) throws -> Int?
    func optionalBlob(_ column: String) throws -> Data?
}

extension StoredRow {
    func text(_ column: String) throws -> String { try required(optionalText(column), column) }
    func integer(_ column: String) throws -> Int { try required(optionalInteger(column), column) }
    func blob(_ column: String) throws -> Data { try required(optionalBlob(column), column) }
    func date(_ column: String) throws -> Date { Date(timeIntervalSince1970: try required(optionalReal(column), column)) }
    func optionalDate(_ column: String) throws -> Date? { try optionalReal(column).map(Date.init(timeIntervalSince1970:)) }

    private func required<T>(_ value: T?, _ column: String) throws -> T {
        guard let value else { throw StoreError.missingValue(column) }
        return value
    }
}

/// `tasks.callback_url` is NOT NULL from before stream-only tasks: those store an empty text.
enum StoredCallback {
    static func text(_ url: String?) -> String { url ?? "" }
    static func url(_ text: String) -> String? { text.isEmpty ? nil : text }
}

/// The task's structured fields as the JSON text both stores keep.
struct TaskColumns {
    var requestJSON: String
    var metadataJSON: String?
    var upstreamJSON: String?
    var callbackEventsJSON: String
    var videoCopiesJSON: String?

    init(_ task: RelayTask) throws {
        requestJSON = try Self.text(task.request)
        metadataJSON = try task.metadata.map(Self.text)
        upstreamJSON = try task.upstream.map(Self.text)
        videoCopiesJSON = try task.videoCopies.map(Self.text)
        callbackEventsJSON = try Self.text(task.callbackEvents.map(\.rawValue).sorted())
    }

    static func text(_ value: some Encodable) throws -> String {
        String(decoding: try JSONCoding.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONCoding.decode(type, from: Data(text.utf8))
    }
}

/// Rows to domain values, for both stores.
enum RowMapping {
    static func task(_ row: some StoredRow) throws -> RelayTask {
        let request = try TaskColumns.decode(GenerationRequest.self, row.text("request_json"))
        var relayRequest = RelayRequest(generation: request, callbackURL: StoredCallback.url(try row.text("callback_url")),
                                        metadata: try row.optionalText("metadata_json").map { try TaskColumns.decode(JSONValue.self, $0) })
        if let events = try row.optionalText("callback_events") {
            relayRequest.callbackEvents = Set(try TaskColumns.decode([String].self, events).compactMap(WebhookEventType.init(rawValue:)))
        }
        var task = RelayTask(id: try row.text("id"), clientID: try row.text("client_id"), request: relayRequest,
                             now: try row.date("created_at"))
        task.state = TaskState(rawValue: try row.text("state")) ?? .failed
        task.upstreamTaskID = try row.optionalText("upstream_task_id")
        task.upstreamKey = try row.optionalText("upstream_key")
        task.submissionAnswer = try row.optionalText("submission_answer")
        task.upstream = try row.optionalText("upstream_json").map { try TaskColumns.decode(UpstreamTaskView.self, $0) }
        if let code = try row.optionalText("error_code") {
            task.error = TaskError(code: code, message: try row.optionalText("error_message") ?? "")
        }
        task.submittedAt = try row.optionalDate("submitted_at")
        task.completedAt = try row.optionalDate("completed_at")
        task.nextRunAt = try row.optionalDate("next_run_at")
        task.failures = try row.integer("failures")
        task.traceParent = try row.optionalText("trace_parent")
        task.videoCopies = try row.optionalText("video_copies_json").map { try TaskColumns.decode([VideoCopy].self, $0) }
        return task
    }

    /// A claimed `deliveries` row with its event's `payload` and `trace_parent`, and the credentials of
    /// the client (the plan puts an endpoint's in place of them).
    static func pendingDelivery(_ row: some StoredRow, event: (some StoredRow)?, secrets: [String]) throws -> PendingDelivery {
        PendingDelivery(key: try deliveryKey(row), taskID: try row.optionalText("task_id"), type: try row.text("type"),
                        payload: try event?.optionalBlob("payload") ?? Data(), url: try row.text("url"),
                        destination: try row.text("destination"), attempts: try row.integer("attempts"),
                        signingSecrets: secrets, traceParent: try event?.optionalText("trace_parent"))
    }

    /// A row's `signing_secret` and, during a rotation, `previous`: each a space-separated credential text.
    static func secrets(_ row: some StoredRow) throws -> [String] {
        [try row.optionalText("signing_secret"), try row.optionalText("previous")].compactMap { $0 }
            .flatMap { $0.split(separator: " ").map(String.init) }
    }

    static func claimedEndpoint(_ row: some StoredRow) throws -> ClaimedEndpoint {
        ClaimedEndpoint(enabled: try row.integer("enabled") != 0, maxRate: try row.optionalInteger("max_rate"),
                        nextSendAt: try row.optionalDate("next_send_at"), secrets: try secrets(row))
    }

    static func deliveryKey(_ row: some StoredRow) throws -> DeliveryKey {
        DeliveryKey(eventID: try row.text("event_id"), target: DeliveryTarget(stored: try row.text("endpoint_id")))
    }

    static func delivery(_ row: some StoredRow) throws -> DeliveryRecord {
        DeliveryRecord(key: try deliveryKey(row), taskID: try row.optionalText("task_id"), type: try row.text("type"),
                       state: DeliveryState(rawValue: try row.text("state")) ?? .pending, attempts: try row.integer("attempts"),
                       nextAttemptAt: try row.optionalDate("next_attempt_at"), lastStatusCode: try row.optionalInteger("last_status_code"),
                       lastError: try row.optionalText("last_error"), url: try row.text("url"),
                       createdAt: try row.date("created_at"), deliveredAt: try row.optionalDate("delivered_at"), attemptLog: [])
    }

    static func attempt(_ row: some StoredRow) throws -> DeliveryAttempt {
        DeliveryAttempt(key: try deliveryKey(row), attemptedAt: try row.date("attempted_at"),
                        statusCode: try row.optionalInteger("status_code"), latency: try row.optionalReal("latency") ?? 0,
                        error: try row.optionalText("error"), responseExcerpt: try row.optionalText("response_excerpt"))
    }

    static func endpoint(_ row: some StoredRow) throws -> Endpoint {
        var endpoint = Endpoint(id: try row.text("id"), clientID: try row.text("client_id"), url: try row.text("url"),
                                description: try row.text("description"),
                                eventTypes: try TaskColumns.decode([String].self, try row.text("event_types")),
                                enabled: try row.integer("enabled") != 0, maxRate: try row.optionalInteger("max_rate"),
                                signatures: SigningKeys(stored: try row.text("signing_secret")).schemes, now: try row.date("created_at"))
        endpoint.disabledReason = try row.optionalText("disabled_reason")
        endpoint.failingSince = try row.optionalDate("failing_since")
        endpoint.rotationEndsAt = try row.optionalDate("previous_secret_expires_at")
        endpoint.updatedAt = try row.date("updated_at")
        return endpoint
    }

    static func publishedKeys(_ row: some StoredRow) throws -> [PublishedKey] {
        PublishedKey.keys(endpointID: try row.optionalText("endpoint_id"), current: try row.text("signing_secret"),
                          previous: try row.optionalText("previous"), previousUntil: try row.optionalDate("previous_secret_expires_at"))
    }

    /// `endpoint_id`, `attempts`, `succeeded`, `last_attempt_at` and `last_error` of a health query.
    static func endpointHealth(_ row: some StoredRow) throws -> (String, EndpointHealth) {
        var health = EndpointHealth()
        health.attempts = try row.integer("attempts")
        health.succeeded = try row.integer("succeeded")
        health.lastAttemptAt = try row.optionalDate("last_attempt_at")
        health.lastError = try row.optionalText("last_error")
        return (try row.text("endpoint_id"), health)
    }

    static func callbackSummary(_ row: some StoredRow) throws -> CallbackSummary {
        CallbackSummary(state: try row.text("state"), attempts: try row.integer("attempts"),
                        lastStatusCode: try row.optionalInteger("last_status_code"), lastError: try row.optionalText("last_error"),
                        nextAttemptAt: try row.optionalDate("next_attempt_at")?.unixSeconds)
    }

    static func streamEvent(_ row: some StoredRow) throws -> StreamEvent {
        StreamEvent(id: try row.text("id"), taskID: try row.text("task_id"), sequence: try row.integer("seq"), type: try row.text("type"),
                    payload: try row.blob("payload"))
    }

    static func client(_ row: some StoredRow) throws -> Client {
        Client(id: try row.text("id"), name: try row.text("name"), signingSecret: try row.text("signing_secret"))
    }

    static func clientRecord(_ row: some StoredRow) throws -> ClientRecord {
        ClientRecord(id: try row.text("id"), name: try row.text("name"),
                     budget: try row.optionalText("budget").map(ClientBudget.init(parsing:)) ?? .unlimited, createdAt: try row.date("created_at"),
                     revokedAt: try row.optionalDate("revoked_at"), rotationEndsAt: try row.optionalDate("previous_secret_expires_at"))
    }
}

extension RowMapping {
    static func deliveryState(_ row: some StoredRow) throws -> (String, DeliveryState) {
        let state = try row.text("state")
        guard let value = DeliveryState(rawValue: state) else { throw StoreError.missingValue("deliveries.state \(state)") }
        return (try row.text("task_id"), value)
    }

    static func submissionPause(_ row: some StoredRow) throws -> SubmissionPause {
        SubmissionPause(scope: ClientScope(stored: try row.text("scope")), since: try row.date("paused_at"))
    }
}
