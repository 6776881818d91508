import Foundation

/// What happened in a window, slot by slot, for the console's charts: read from the database, so
/// every instance shows the same.
public struct ActivityReport: Sendable, Equatable {
    public var start: Date
    public var slot: TimeInterval
    public var accepted: [Int]
    public var succeeded: [Int]
    /// Failed or cancelled.
    public var failed: [Int]
    /// Tasks that ended on the upstream's account (failed, rejected, lost, unreadable, outcome unknown).
    public var upstreamErrors: [Int]
    public var webhookAttempts: [Int]
    /// Attempts the receiver answered with a 2xx.
    public var webhooksAccepted: [Int]
    /// Notification lag (upstream completion → terminal webhook delivered) of the webhooks delivered
    /// in each slot, in seconds: median and 95th percentile; nil where none was delivered.
    public var lagP50: [Double?]
    public var lagP95: [Double?]

    init(start: Date, slot: TimeInterval, count: Int) {
        (self.start, self.slot) = (start, slot)
        (accepted, succeeded, failed, upstreamErrors, webhookAttempts, webhooksAccepted) =
            ([Int](repeating: 0, count: count), [Int](repeating: 0, count: count), [Int](repeating: 0, count: count),
             [Int](repeating: 0, count: count), [Int](repeating: 0, count: count), [Int](repeating: 0, count: count))
        (lagP50, lagP95) = ([Double?](repeating: nil, count: count), [Double?](repeating: nil, count: count))
    }
}

/// One statement for `StoreMaintenance.activity` (1 start, 2 slot width, 3 end): every branch is an
/// index range on its time column.
enum ActivityQuery {
    static let statement: Statement = {
        func slot(_ column: String) -> String { "CAST(floor((\(column) - $1) / $2) AS BIGINT)" }
        let upstreamCodes = TaskError.Code.upstreamCodes.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return Statement("""
            SELECT 'accepted' AS kind, \(slot("created_at")) AS slot, count(*) AS n, CAST(NULL AS DOUBLE PRECISION) AS lag
              FROM tasks WHERE created_at >= $1 AND created_at < $3 GROUP BY 2
            UNION ALL SELECT state, \(slot("completed_at")), count(*), NULL
              FROM tasks WHERE completed_at >= $1 AND completed_at < $3 GROUP BY 1, 2
            UNION ALL SELECT 'upstream_error', \(slot("completed_at")), count(*), NULL
              FROM tasks WHERE completed_at >= $1 AND completed_at < $3 AND error_code IN (\(upstreamCodes)) GROUP BY 2
            UNION ALL SELECT CASE WHEN status_code BETWEEN 200 AND 299 THEN 'webhook_accepted' ELSE 'webhook_refused' END,
                   \(slot("attempted_at")), count(*), NULL
              FROM delivery_attempts WHERE attempted_at >= $1 AND attempted_at < $3 GROUP BY 1, 2
            UNION ALL SELECT 'lag', \(slot("d.delivered_at")), 0, d.delivered_at - t.completed_at
              FROM deliveries d JOIN tasks t ON t.id = d.task_id
              WHERE d.delivered_at >= $1 AND d.delivered_at < $3 AND d.endpoint_id = '' AND d.type IN ('task.succeeded', 'task.failed')
            """)
    }()

    static func report(from rows: [any StoredRow], start: Date, slot: TimeInterval, count: Int) throws -> ActivityReport {
        var report = ActivityReport(start: start, slot: slot, count: count)
        var lags = [[Double]](repeating: [], count: count)
        for row in rows {
            let index = try row.integer("slot")
            guard (0..<count).contains(index) else { continue }
            let n = try row.integer("n")
            switch try row.text("kind") {
            case "accepted": report.accepted[index] += n
            case TaskState.succeeded.rawValue: report.succeeded[index] += n
            case TaskState.failed.rawValue, TaskState.cancelled.rawValue: report.failed[index] += n
            case "upstream_error": report.upstreamErrors[index] += n
            case "webhook_accepted": (report.webhookAttempts[index], report.webhooksAccepted[index]) =
                (report.webhookAttempts[index] + n, report.webhooksAccepted[index] + n)
            case "webhook_refused": report.webhookAttempts[index] += n
            case "lag": if let lag = try row.optionalReal("lag") { lags[index].append(max(0, lag)) }
            default: break
            }
        }
        for (index, values) in lags.enumerated() where !values.isEmpty {
            let sorted = values.sorted()
            report.lagP50[index] = sorted[(sorted.count - 1) / 2]
            report.lagP95[index] = sorted[Int((Double(sorted.count - 1) * 0.95).rounded(.down))]
        }
        return report
    }
}
