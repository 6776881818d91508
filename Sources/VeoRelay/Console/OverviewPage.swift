import Foundation
import Hummingbird

/// The console's landing page: the last hour and the last day as charts, the backlog now, and the stop
/// switch with its buttons. Everything is read from the database, so every instance shows the same.
struct OverviewPage: Sendable {
    let store: any TaskQueue & StoreMaintenance & EndpointDirectory & UpstreamAccounts & ClientDirectory
    let pages: ConsolePages
    let clock: any WallClock

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get(use: show)
        console.post("pause", use: pause)
        console.post("resume", use: resume)
    }

    @Sendable func show(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let signedIn = try context.signedIn
        let now = clock.now()
        var sections: [OverviewView.Section] = []
        for (title, slot, count, per) in [("Last hour", 60.0, 60, "per minute"), ("Last day", 900.0, 96, "per 15 minutes")] {
            // Whole slots ending with the one now running.
            let end = (now.timeIntervalSince1970 / slot).rounded(.up) * slot
            let report = try await store.activity(from: Date(timeIntervalSince1970: end - slot * Double(count)), slot: slot, count: count)
            sections.append(.init(title: "\(title) (\(per))", charts: Self.charts(report, per: per, now: now, dated: slot * Double(count) > 3_600)
                .map { .init(svg: $0.svg) }))
        }
        let backlog = try await store.backlog(now: now)
        func late(_ date: Date?) -> String { date.map { "oldest due \(Int(now.timeIntervalSince($0))) s ago" } ?? "nothing due" }
        let stages = [
            NamedValue(name: "submission", value: "\((backlog.tasksByState[.queued] ?? 0) + (backlog.tasksByState[.submitting] ?? 0)) queued or on the wire, \(late(backlog.oldestDueSubmission))"),
            NamedValue(name: "polling", value: "\(backlog.tasksByState[.running] ?? 0) running, \(late(backlog.oldestDuePoll))"),
            NamedValue(name: "delivery", value: late(backlog.oldestDueDelivery)),
        ]
        let pauses = try await store.submissionPauses().map { pause in
            NamedValue(name: pause.scope.label, value: ConsolePages.time(pause.since))
        }
        let disabled = try await store.endpoints(scope: .allClients).count { !$0.enabled && $0.disabledReason != nil }
        let clients = try await store.clients().filter { $0.revokedAt == nil }.map { ClientChoice(id: $0.id, name: $0.name, selected: false) }
        let view = OverviewView(sections: sections, backlog: stages, pauses: pauses, clients: clients, csrf: signedIn.csrf,
                                disabledEndpoints: disabled == 0 ? nil : disabled,
                                accountHold: AccountHold.text(try await store.accountHolds(), now: now))
        return pages.page("Overview", "overview", view, signedIn: signedIn, notice: request.uri.queryParameters.get("notice"))
    }

    /// Tasks, webhook success, notification lag and upstream errors over the report's window.
    /// `dated`: the axis names the day too (a window longer than an hour spans midnight now and then).
    static func charts(_ report: ActivityReport, per: String, now: Date, dated: Bool = false) -> [SVGChart] {
        func label(_ date: Date) -> String {
            dated ? ConsolePages.time(date) : date.formatted(.iso8601.time(includingFractionalSeconds: false)) + " UTC"
        }
        let start = label(report.start)
        let end = report.start.addingTimeInterval(report.slot * Double(report.accepted.count))
        let endLabel = end > now ? "now" : label(end)
        func counts(_ values: [Int]) -> [Double?] { values.map(Double.init) }
        let successRate = zip(report.webhooksAccepted, report.webhookAttempts).map { accepted, attempts in
            attempts == 0 ? nil : Double(accepted) * 100 / Double(attempts)
        }
        return [
            SVGChart(title: "Tasks \(per)", unit: "", series: [
                .init(name: "accepted", color: "#1f5fbf", values: counts(report.accepted)),
                .init(name: "succeeded", color: "#178a2e", values: counts(report.succeeded)),
                .init(name: "failed", color: "#c0392b", values: counts(report.failed)),
            ], startLabel: start, endLabel: endLabel),
            SVGChart(title: "Webhooks accepted by receivers", unit: "%", series: [
                .init(name: "2xx of attempts", color: "#178a2e", values: successRate),
            ], startLabel: start, endLabel: endLabel, maximum: 100),
            SVGChart(title: "Notification lag (completion → delivered)", unit: "s", series: [
                .init(name: "p50", color: "#1f5fbf", values: report.lagP50),
                .init(name: "p95", color: "#8e44ad", values: report.lagP95),
            ], startLabel: start, endLabel: endLabel),
            SVGChart(title: "Tasks ended by upstream errors \(per)", unit: "", series: [
                .init(name: "upstream errors", color: "#c0392b", values: counts(report.upstreamErrors)),
            ], startLabel: start, endLabel: endLabel),
        ]
    }

    @Sendable func pause(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        try await switchSubmissions(context) { scope in
            try await store.pauseSubmissions(scope, at: clock.now())
            return "Submissions paused for"
        }
    }

    @Sendable func resume(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        try await switchSubmissions(context) { scope in
            try await store.resumeSubmissions(scope) ? "Submissions resumed for" : "Submissions were not paused for"
        }
    }

    /// Runs the stop switch for the form's client (empty: all clients) and returns to the overview.
    private func switchSubmissions(_ context: ConsoleRequestContext, _ change: (ClientScope) async throws -> String) async throws -> Response {
        let client = try context.signedIn.form?.client?.trimmingCharacters(in: .whitespaces) ?? ""
        let scope: ClientScope = client.isEmpty ? .allClients : .client(client)
        let said = try await change(scope) + " " + scope.label + "."
        context.logger.notice("stop switch from the console", metadata: ["change": "\(said)"])
        return ConsolePages.redirect("/console", notice: said)
    }
}

struct OverviewView {
    struct Section {
        var title: String
        var charts: [Chart]
    }

    struct Chart {
        var svg: String
    }

    var sections: [Section]
    var backlog: [NamedValue]
    var pauses: [NamedValue]
    /// The stop switch's choices besides every client.
    var clients: [ClientChoice]
    var csrf: String
    /// How many endpoints the relay disabled for failing (nil: none), for the notice.
    var disabledEndpoints: Int?
    /// Submissions held because the upstream account refuses work (nil: it takes work).
    var accountHold: String?
}
