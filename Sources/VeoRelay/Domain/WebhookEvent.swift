import Foundation

public enum WebhookEventType: String, Sendable, Codable, CaseIterable {
    /// The upstream accepted the task (carries `upstream_task_id`).
    case taskSubmitted = "task.submitted"
    /// A poll saw the upstream status or progress change.
    case taskProgress = "task.progress"
    case taskSucceeded = "task.succeeded"
    case taskFailed = "task.failed"

    /// What a task announces when the request names no `callback_events`.
    public static let defaultSubscription: Set<WebhookEventType> = [.taskSucceeded, .taskFailed]
}

/// A generated video as subscribers see it: the upstream's URL and when it stops working, and with
/// `--store-videos` the relay's lasting copy (or why there is none).
public struct VideoLink: Codable, Sendable, Equatable {
    public var url: String
    public var expiresAt: Int?
    public var storedURL: String?
    public var sha256: String?
    public var bytes: Int?
    public var storeError: String?

    public init(url: String, expiresAt: Int?) {
        self.url = url
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case url, sha256, bytes
        case expiresAt = "expires_at"
        case storedURL = "stored_url"
        case storeError = "store_error"
    }

    /// A task's videos, each beside the relay's copy of it when there is one. None while the relay
    /// stores them, as the upstream shows none before completion.
    public static func links(of task: RelayTask) -> [VideoLink] {
        guard task.state != .storing else { return [] }
        var links = links(from: task.upstream?.result)
        for copy in task.videoCopies ?? [] where links.indices.contains(copy.index) {
            links[copy.index].storedURL = copy.storedURL
            links[copy.index].sha256 = copy.sha256
            links[copy.index].bytes = copy.bytes
            links[copy.index].storeError = copy.storeError
        }
        return links
    }

    /// Flattens the upstream's result, whose `url` is a string or an array depending on the model.
    public static func links(from result: JSONValue?) -> [VideoLink] {
        guard case .array(let videos)? = result?["videos"] else { return [] }
        return videos.flatMap { video -> [VideoLink] in
            let expiresAt = ExternalNumber.boundedInteger(video["expires_at"]?.numberValue, maximum: ExternalNumber.latestUnixSeconds)
            switch video["url"] {
            case .string(let url)?: return [VideoLink(url: url, expiresAt: expiresAt)]
            case .array(let urls)?: return urls.compactMap(\.stringValue).map { VideoLink(url: $0, expiresAt: expiresAt) }
            default: return []
            }
        }
    }
}

/// The Standard Webhooks envelope `{type, timestamp, data}` the relay POSTs to a callback URL.
/// Built once when the event is created; retries send the same bytes.
public struct WebhookPayload: Codable, Sendable, Equatable {
    public var type: String
    public var timestamp: String
    public var data: TaskEventData

    public init(type: WebhookEventType, task: RelayTask, at now: Date) {
        self.type = type.rawValue
        self.timestamp = now.formatted(.iso8601)
        self.data = TaskEventData(task: task)
    }
}

public struct TaskEventData: Codable, Sendable, Equatable {
    public var taskID: String
    public var upstreamTaskID: String?
    public var status: String
    public var progress: Int
    public var videos: [VideoLink]
    public var error: TaskError?
    public var request: GenerationRequest
    public var metadata: JSONValue?
    public var createdAt: Int
    public var completedAt: Int?

    enum CodingKeys: String, CodingKey {
        case status, progress, videos, error, request, metadata
        case taskID = "task_id"
        case upstreamTaskID = "upstream_task_id"
        case createdAt = "created_at"
        case completedAt = "completed_at"
    }

    public init(task: RelayTask) {
        taskID = task.id
        upstreamTaskID = task.upstreamTaskID
        status = task.publicStatus
        progress = task.progress
        videos = VideoLink.links(of: task)
        error = task.error
        request = task.request
        metadata = task.metadata
        createdAt = task.createdAt.unixSeconds
        completedAt = task.completedAt?.unixSeconds
    }
}

/// The unit of isolation for deliveries: a callback URL's `host:port`.
public enum CallbackDestination {
    public static func key(for callbackURL: String) -> String {
        guard let components = URLComponents(string: callbackURL), let host = components.host?.lowercased() else {
            return callbackURL
        }
        let port = components.port ?? (components.scheme?.lowercased() == "https" ? 443 : 80)
        return "\(host):\(port)"
    }
}
