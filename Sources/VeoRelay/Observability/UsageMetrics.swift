import Metrics

/// Usage on `/metrics`, by client, model and outcome: `accepted` and `refused` (over budget) at intake,
/// then `succeeded`, `failed` or `cancelled` at each task's end; and the seconds of video accepted.
enum UsageMetrics {
    static func count(_ outcome: String, of task: RelayTask) {
        Counter(label: "veo_relay_usage_tasks_total",
                dimensions: [("client", task.clientID), ("model", task.request.model.rawValue), ("outcome", outcome)]).increment()
        if outcome == "accepted" {
            Counter(label: "veo_relay_usage_video_seconds_total", dimensions: [("client", task.clientID), ("model", task.request.model.rawValue)])
                .increment(by: Int64(task.request.requestedSeconds))
        }
    }

    /// A task's end, if `task` has ended.
    static func ended(_ task: RelayTask) {
        if task.state.isTerminal { count(task.state.rawValue, of: task) }
    }
}
