import Foundation

/// Reads answers from gateways of the xcompute family, which differ in small ways: the task object
/// with or without the `{"code","data"}` envelope, a numeric or string id, status words (`queued`,
/// `in_progress`, `succeeded`, `canceled`…), `error` as a string or an object, and an HTTP 200 whose
/// body carries a failing `code`. Every number is bounded (`ExternalNumber`) before it is used.
enum UpstreamAnswer {
    /// The longest excerpt of a raw answer kept on a task or written to a log.
    static let excerptBytes = 2_048

    /// The status a body reports in its `code` when that differs from success (an HTTP 200 carrying
    /// `{"code": 400, …}`), else nil.
    static func embeddedStatus(in json: JSONValue?) -> Int? {
        guard let code = ExternalNumber.boundedInteger(json?["code"]?.numberValue, maximum: 999),
              (100...599).contains(code), !(200..<300).contains(code) else { return nil }
        return code
    }

    /// The task id a submission answer names: in the envelope's `data` (an array of entries or one
    /// object) or at the top level, as a string or a number.
    static func submittedTaskID(in json: JSONValue?) -> String? {
        for candidate in [json?["data"], json] {
            let entry: JSONValue? = if case .array(let items)? = candidate { items.first } else { candidate }
            for key in ["task_id", "id"] {
                switch entry?[key] {
                case .string(let id)? where !id.isEmpty: return id
                case .int(let id)?: return String(id)
                default: continue
                }
            }
        }
        return nil
    }

    /// A status answer as the relay's view of the task; nil when no task object with a known status
    /// word can be found in it.
    static func taskView(from json: JSONValue) -> UpstreamTaskView? {
        let object: JSONValue? = switch json["data"] {
        case .object?: json["data"]
        case .array(let items)?: items.first
        default: json
        }
        guard let data = object, let word = data["status"]?.stringValue, let status = normalizedStatus(word) else { return nil }
        func number(_ key: String) -> Double? {
            data[key]?.numberValue ?? data[key]?.stringValue.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        }
        return UpstreamTaskView(
            status: status,
            progress: ExternalNumber.boundedInteger(number("progress"), maximum: 100),
            result: data["result"], error: data["error"],
            created: ExternalNumber.boundedInteger(number("created"), maximum: ExternalNumber.latestUnixSeconds),
            completed: ExternalNumber.boundedInteger(number("completed"), maximum: ExternalNumber.latestUnixSeconds),
            estimatedTime: ExternalNumber.bounded(number("estimated_time"), maximum: maximumDuration),
            actualTime: ExternalNumber.bounded(number("actual_time"), maximum: maximumDuration))
    }

    /// No generation takes a day; a longer reported time is clamped to one.
    static let maximumDuration: TimeInterval = 86_400

    /// The upstream's documented status words, from the synonyms other gateways of the family use.
    static func normalizedStatus(_ word: String) -> String? {
        switch word.lowercased().trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "-", with: "_") {
        case "pending", "queued", "queueing", "queuing", "submitted", "waiting", "created", "not_started", "not_start": "pending"
        case "processing", "in_progress", "running", "started", "generating": "processing"
        case "completed", "complete", "succeeded", "success", "successful", "succeed", "done", "finished": "completed"
        case "failed", "failure", "fail", "error", "errored": "failed"
        case "cancelled", "canceled", "cancel": "cancelled"
        default: nil
        }
    }

    /// The start of a raw answer, as text, for a task's record and for logs.
    static func excerpt(_ body: Data) -> String {
        String(decoding: body.prefix(excerptBytes), as: UTF8.self)
    }
}
