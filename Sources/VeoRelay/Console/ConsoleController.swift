import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// `/console`: a small server-rendered operator console — tasks, one task's events and delivery
/// attempts, dead letters with Replay, clients, upstream state. Only routed when a console token is
/// configured. Pages are plain HTML forms without scripts; a strict Content-Security-Policy forbids
/// any, so even a markup injection could not run code.
public struct ConsoleController: Sendable {
    let store: any RelayStore
    let cancellation: TaskCancellation
    let sessions: ConsoleSessions
    let templates: MustacheLibrary
    let clock: any WallClock
    let dispatcherWake: WakeSignal
    let upstream: UpstreamGate
    let destinations: DestinationGate
    /// The stored videos the task page plays (`--store-videos`).
    let videos: StoredVideoFiles?
    /// The endpoints page's Test button.
    let endpointTester: EndpointTester
    static let pageSize = 50

    init(store: any RelayStore, cancellation: TaskCancellation, sessions: ConsoleSessions, clock: any WallClock, dispatcherWake: WakeSignal,
         upstream: UpstreamGate, destinations: DestinationGate, videos: StoredVideoFiles? = nil, endpointTester: EndpointTester) throws {
        self.store = store
        self.cancellation = cancellation
        self.sessions = sessions
        self.templates = try ConsoleTemplates.library()
        self.clock = clock
        self.dispatcherWake = dispatcherWake
        self.upstream = upstream
        self.destinations = destinations
        self.videos = videos
        self.endpointTester = endpointTester
    }

    public func addRoutes(to router: Router<RelayRequestContext>) {
        let console = router.group("console")
        console.get(use: overview)
        console.post("pause", use: pause)
        console.post("resume", use: resume)
        console.get("sign-in", use: signInPage)
        console.post("sign-in", use: signIn)
        console.post("sign-out", use: signOut)
        console.get("tasks", use: taskList)
        console.get("tasks/:id", use: taskPage)
        console.get("tasks/:id/videos/:index", use: video)
        console.post("tasks/:id/replay", use: replay)
        console.post("tasks/:id/cancel", use: cancel)
        console.get("dead-letters", use: deadLetterList)
        console.get("clients", use: clientList)
        console.get("endpoints", use: endpointList)
        console.post("endpoints/:id/test", use: testEndpoint)
        console.post("endpoints/:id/enable", use: enableEndpoint)
        console.post("endpoints/:id/disable", use: disableEndpoint)
        console.get("usage", use: usagePage)
        console.get("upstream", use: upstreamPage)
    }

    // MARK: Sign-in

    @Sendable func signInPage(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let (nonce, cookie) = sessions.newSignInNonce()
        var response = page("Sign in", "signin", SignInView(nonce: nonce, failed: request.uri.queryParameters.get("failed") != nil), session: nil)
        response.setCookie(cookie)
        return response
    }

    @Sendable func signIn(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let form = try await Self.form(SignInForm.self, request)
        guard sessions.checkSignInNonce(form.nonce, request) else { return forbidden() }
        guard sessions.accepts(token: form.token ?? "") else {
            context.logger.notice("console sign-in refused")
            return Self.redirect("/console/sign-in?failed=1")
        }
        let (_, cookie) = sessions.newSession()
        var response = Self.redirect("/console")
        response.setCookie(cookie)
        response.setCookie(sessions.expired(ConsoleSessions.signInCookie))
        context.logger.info("console sign-in")
        return response
    }

    @Sendable func signOut(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        guard sessions.checkCSRF(try await Self.form(ActionForm.self, request).csrf, for: session) else { return forbidden() }
        var response = Self.redirect("/console/sign-in")
        response.setCookie(sessions.expired(ConsoleSessions.sessionCookie))
        return response
    }

    // MARK: Pages

    @Sendable func taskList(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        let parameters = request.uri.queryParameters
        let state = parameters.get("state").flatMap(TaskState.init(rawValue:))
        let client = parameters.get("client").flatMap { $0.isEmpty ? nil : $0 }
        let search = parameters.get("q").map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        let before = parameters.get("before").flatMap(Self.cursor(parsing:))
        let tasks = try await store.tasks(TaskQuery(state: state, scope: client.map(ClientScope.client) ?? .allClients, search: search, before: before, limit: Self.pageSize))
        let deliveries = try await store.deliveryStates(taskIDs: tasks.map(\.id))
        var older: String?
        if tasks.count == Self.pageSize, let last = tasks.last {
            var query = [URLQueryItem(name: "before", value: "\(last.createdAt.timeIntervalSince1970)_\(last.id)")]
            if let state { query.append(URLQueryItem(name: "state", value: state.rawValue)) }
            if let client { query.append(URLQueryItem(name: "client", value: client)) }
            if let search { query.append(URLQueryItem(name: "q", value: search)) }
            var components = URLComponents()
            components.path = "/console/tasks"
            components.queryItems = query
            older = components.string
        }
        let view = TaskListView(states: TaskState.allCases.map { .init(name: $0.rawValue, selected: $0 == state) }, client: client ?? "",
                                search: search ?? "", rows: tasks.map { TaskRow($0, delivery: deliveries[$0.id]) }, older: older)
        return page("Tasks", "tasks", view, session: session)
    }

    @Sendable func taskPage(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        let id = try context.parameters.require("id")
        guard let task = try await store.task(id: id, scope: .allClients) else { return page("No such task", nil, Empty(), session: session, status: .notFound) }
        let events = try await store.streamEvents(taskID: id, after: 0)
        let deliveries = try await store.deliveryLog(taskID: id, scope: .allClients) ?? []
        let view = try TaskView(task: task, events: events, deliveries: deliveries, csrf: sessions.csrfToken(for: session))
        return page("Task \(id)", "task", view, session: session, notice: request.uri.queryParameters.get("notice"))
    }

    /// A stored video for the task page's player, to the signed-in operator.
    @Sendable func video(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard sessions.session(request) != nil else { return Self.redirect("/console/sign-in") }
        let id = try context.parameters.require("id")
        guard let videos, let task = try await store.task(id: id, scope: .allClients) else { throw APIError.notFound("No task '\(id)'.") }
        return try await videos.respond(task, indexText: try context.parameters.require("index"), request: request, context: context)
    }

    @Sendable func replay(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        let form = try await Self.form(ActionForm.self, request)
        guard sessions.checkCSRF(form.csrf, for: session) else { return forbidden() }
        let id = try context.parameters.require("id")
        let target = form.destination.map(DeliveryTarget.init(named:))
        guard let record = try await store.redeliver(taskID: id, scope: .allClients, eventID: form.event, target: target, now: clock.now()).first else {
            return page("No such delivery", nil, Empty(), session: session, status: .notFound)
        }
        dispatcherWake.signal()
        context.logger.info("redelivery requested from the console", metadata: ["task_id": "\(id)", "event_id": "\(record.eventID)"])
        return Self.redirect("/console/tasks/\(id)?notice="
                             + "Replay of \(record.eventID) to \(record.key.target) queued.".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
    }

    @Sendable func deadLetterList(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        let records = try await store.deliveries(scope: .allClients, state: .failed, limit: 200)
        let csrf = sessions.csrfToken(for: session)
        return page("Dead letters", "deadletters", DeadLetterView(rows: records.map { DeadLetterRow($0, csrf: csrf) }), session: session)
    }

    @Sendable func clientList(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        let rows = try await store.clients().map { ClientRow(id: $0.id, name: $0.name, budget: $0.budget.text, created: Self.time($0.createdAt),
                                                             revoked: Self.time($0.revokedAt), rotationEnds: Self.time($0.rotationEndsAt)) }
        return page("Clients", "clients", ClientListView(rows: rows), session: session)
    }

    @Sendable func upstreamPage(_ request: Request, context: RelayRequestContext) async throws -> Response {
        guard let session = sessions.session(request) else { return Self.redirect("/console/sign-in") }
        let now = clock.now()
        let recent = upstream.recentOutcomes()
        let backlog = try await store.backlog(now: now)
        var rows = TaskState.allCases.map { NamedValue(name: "tasks \($0.rawValue)", value: "\(backlog.tasksByState[$0] ?? 0)") }
        rows += [("oldest due submission", backlog.oldestDueSubmission), ("oldest due poll", backlog.oldestDuePoll),
                 ("oldest due delivery", backlog.oldestDueDelivery)]
            .map { NamedValue(name: $0.0, value: $0.1.map { "\(Int(now.timeIntervalSince($0))) s late" } ?? "none") }
        let view = UpstreamView(breaker: upstream.isOpen() ? "open (upstream paused)" : "closed",
                                tokens: String(format: "%.1f", upstream.availableTokens()), burst: "\(upstream.policy.burst)",
                                rate: "\(upstream.policy.rate)", requests: recent.requests, failures: recent.failures,
                                errorRate: recent.requests == 0 ? "no requests"
                                    : String(format: "%.1f %%", Double(recent.failures) * 100 / Double(recent.requests)),
                                openDestinations: destinations.openCircuits(at: now), backlog: rows)
        return page("Upstream", "upstream", view, session: session)
    }

    // MARK: Rendering

    /// Security headers for every console page: no scripts, no framing, no caching, no referrer.
    static let headers: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        // Media from the relay itself only: the task page plays stored videos, still without any script.
        .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; media-src 'self'; form-action 'self'; frame-ancestors 'none'",
        HTTPField.Name("X-Frame-Options")!: "DENY", HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
    ]

    func page(_ title: String, _ template: String?, _ view: Any, session: ConsoleSessions.Session?, status: HTTPResponse.Status = .ok,
              notice: String? = nil) -> Response {
        let content = template.flatMap { templates.render(view, withTemplate: $0) } ?? ""
        let layout = LayoutView(title: title, content: content, signedIn: session != nil,
                                csrf: session.map(sessions.csrfToken(for:)) ?? "", notice: notice)
        let html = templates.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: Self.headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func forbidden() -> Response {
        page("The form has expired", nil, Empty(), session: nil, status: .forbidden, notice: "Reload the page and try again.")
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func form<Form: Decodable>(_ type: Form.Type, _ request: Request) async throws -> Form {
        var request = request
        let body = try await request.collectBody(upTo: 16 * 1024)
        do {
            return try URLEncodedFormDecoder().decode(Form.self, from: String(buffer: body))
        } catch {
            throw APIError.invalidRequest("The form could not be read.")
        }
    }

    static func cursor(parsing text: String) -> TaskCursor? {
        let parts = text.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let seconds = Double(parts[0]) else { return nil }
        return TaskCursor(createdAt: Date(timeIntervalSince1970: seconds), id: String(parts[1]))
    }

    static func time(_ date: Date?) -> String {
        date.map { $0.formatted(.iso8601) } ?? ""
    }
}

// MARK: Forms and views

struct SignInForm: Decodable {
    var token: String?
    var nonce: String?
}

/// A state-changing form: its CSRF token and, for Replay, the event; for the stop switch, the client.
struct ActionForm: Decodable {
    var csrf: String?
    var event: String?
    /// `callback` or an endpoint id: the one destination a replay goes to.
    var destination: String?
    var client: String?
}

struct Empty {}

struct LayoutView {
    var title: String
    var content: String
    var signedIn: Bool
    var csrf: String
    var notice: String?
}

struct SignInView {
    var nonce: String
    var failed: Bool
}

struct NamedValue {
    var name: String
    var value: String
}

struct TaskListView {
    struct StateOption {
        var name: String
        var selected: Bool
    }

    var states: [StateOption]
    var client: String
    var search: String
    var rows: [TaskRow]
    var older: String?
}

struct TaskRow {
    var id, state, delivery, clientID, model, prompt, created: String

    /// `delivery`: the state of the task's latest webhook, if it has one.
    init(_ task: RelayTask, delivery: DeliveryState?) {
        id = task.id
        state = task.state.rawValue
        self.delivery = delivery?.rawValue ?? (task.callbackURL == nil ? "stream only" : "—")
        clientID = task.clientID
        model = task.request.model.rawValue
        prompt = task.request.prompt.count > 80 ? task.request.prompt.prefix(80) + "…" : task.request.prompt
        created = ConsoleController.time(task.createdAt)
    }
}

struct TaskView {
    struct Event {
        var sequence: Int
        var type, id, at: String
    }

    struct Delivery {
        struct Attempt {
            var at, status, latency, error, excerpt: String
        }

        var eventID, taskID, type, state, destination, url, csrf: String
        var attempts: Int
        var nextAttempt: String?
        // Mustache would read `attempts` for the section; the log has its own name.
        var attempts_: [Attempt]
    }

    var taskID, state, clientID, upstreamTaskID, upstreamStatus, callbackURL, created, completed, error, request, csrf: String
    var progress: Int
    /// Still queued: the console offers to cancel it.
    var cancellable: Bool
    var metadata, upstream, submissionAnswer: String?
    var events: [Event]
    var deliveries: [Delivery]
    /// Stored videos the page plays; a video without a copy shows why.
    var videos: [Video]

    struct Video {
        var index: Int
        var stored: Bool
        var storeError: String?
    }

    static let prettyEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    init(task: RelayTask, events: [StreamEvent], deliveries: [DeliveryRecord], csrf: String) throws {
        func pretty(_ value: some Encodable) throws -> String {
            String(decoding: try Self.prettyEncoder.encode(value), as: UTF8.self)
        }
        taskID = task.id
        state = task.state.rawValue
        cancellable = task.state == .queued
        videos = (task.videoCopies ?? []).map { Video(index: $0.index, stored: $0.storedURL != nil, storeError: $0.storeError) }
        self.csrf = csrf
        clientID = task.clientID
        upstreamTaskID = task.upstreamTaskID ?? ""
        upstreamStatus = task.upstream?.status ?? task.publicStatus
        progress = task.progress
        callbackURL = task.callbackURL ?? "none (stream only)"
        created = ConsoleController.time(task.createdAt)
        completed = ConsoleController.time(task.completedAt)
        error = task.error.map { "\($0.code): \($0.message)" } ?? ""
        request = try pretty(task.request)
        metadata = try task.metadata.map(pretty)
        upstream = try task.upstream.map(pretty)
        submissionAnswer = task.submissionAnswer
        self.events = events.map { event in
            let at = (try? JSONValue.parse(event.payload))?["timestamp"]?.stringValue ?? ""
            return Event(sequence: event.sequence, type: event.type, id: event.id, at: at)
        }
        self.deliveries = deliveries.map { record in
            Delivery(eventID: record.eventID, taskID: record.taskID ?? "", type: record.type, state: record.state.rawValue,
                     destination: record.key.target.description, url: record.url, csrf: csrf, attempts: record.attempts,
                     nextAttempt: record.state == .pending ? record.nextAttemptAt.map { ConsoleController.time($0) } : nil,
                     attempts_: record.attemptLog.map { attempt in
                         .init(at: ConsoleController.time(attempt.attemptedAt), status: attempt.statusCode.map(String.init) ?? "—",
                               latency: String(Int(attempt.latency * 1_000)), error: attempt.error ?? "", excerpt: attempt.responseExcerpt ?? "")
                     })
        }
    }
}

struct DeadLetterView {
    var rows: [DeadLetterRow]
}

struct DeadLetterRow {
    var eventID, taskID, type, last, destination, url, csrf: String
    var attempts: Int

    init(_ record: DeliveryRecord, csrf: String) {
        eventID = record.eventID
        taskID = record.taskID ?? ""
        type = record.type
        last = record.lastStatusCode.map { "HTTP \($0)" } ?? record.lastError ?? ""
        destination = record.key.target.description
        url = record.url
        self.csrf = csrf
        attempts = record.attempts
    }
}

struct ClientListView {
    var rows: [ClientRow]
}

struct ClientRow {
    var id, name, budget, created, revoked, rotationEnds: String
}

struct UpstreamView {
    var breaker, tokens, burst, rate: String
    var requests, failures: Int
    var errorRate: String
    var openDestinations: Int
    var backlog: [NamedValue]
}
