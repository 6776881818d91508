import Foundation
import Hummingbird

/// The console's endpoints page: every client's endpoints with their health, a Test button that sends
/// a signed `endpoint.test` at once, and Enable / Disable (enabling sends the events it held).
struct EndpointsPage: Sendable {
    let store: any EndpointDirectory
    let tester: EndpointTester
    let pages: ConsolePages
    let clock: any WallClock
    let dispatcherWake: WakeSignal

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("endpoints", use: list)
        console.post("endpoints/:id/test", use: test)
        console.post("endpoints/:id/enable", use: enable)
        console.post("endpoints/:id/disable", use: disable)
    }

    @Sendable func list(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let signedIn = try context.signedIn
        let health = try await store.endpointHealth(scope: .allClients, since: clock.now().addingTimeInterval(-EndpointsController.healthWindow))
        let rows = try await store.endpoints(scope: .allClients).map {
            EndpointRow($0, health: health[$0.id] ?? EndpointHealth(), csrf: signedIn.csrf)
        }
        return pages.page("Endpoints", "endpoints", EndpointListView(rows: rows), signedIn: signedIn,
                          notice: request.uri.queryParameters.get("notice"))
    }

    @Sendable func test(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        try await endpointAction(context) { endpoint in
            guard let result = try await tester.test(endpoint, scope: .allClients) else { return "\(endpoint.id) no longer exists." }
            context.logger.info("endpoint test from the console", metadata: ["endpoint_id": "\(endpoint.id)", "result": "\(result.summary)"])
            return "Test event \(result.eventID) to \(endpoint.id): \(result.summary)."
        }
    }

    @Sendable func enable(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        try await endpointAction(context) { endpoint in try await setEnabled(endpoint, true, context: context) }
    }

    @Sendable func disable(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        try await endpointAction(context) { endpoint in try await setEnabled(endpoint, false, context: context) }
    }

    private func setEnabled(_ endpoint: Endpoint, _ enabled: Bool, context: ConsoleRequestContext) async throws -> String {
        var changed = endpoint
        changed.enabled = enabled
        guard try await store.updateEndpoint(changed, now: clock.now()) else { return "\(endpoint.id) no longer exists." }
        if enabled { dispatcherWake.signal() }
        context.logger.info("endpoint \(enabled ? "enabled" : "disabled") from the console", metadata: ["endpoint_id": "\(endpoint.id)"])
        return enabled ? "\(endpoint.id) enabled; its held events are on their way." : "\(endpoint.id) disabled; its events wait until it is enabled."
    }

    /// The endpoint found: runs `action` and shows its notice.
    private func endpointAction(_ context: ConsoleRequestContext, _ action: (Endpoint) async throws -> String) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let endpoint = try await store.endpoint(id: id, scope: .allClients) else {
            return pages.notFound("No such endpoint", signedIn: try context.signedIn)
        }
        return ConsolePages.redirect("/console/endpoints", notice: try await action(endpoint))
    }
}

struct EndpointListView {
    var rows: [EndpointRow]
}

struct EndpointRow {
    var id, clientID, url, events, state, stateClass, successRate, lastError, rate, signatures, csrf: String
    var attempts: Int
    var enabled: Bool

    init(_ endpoint: Endpoint, health: EndpointHealth, csrf: String) {
        id = endpoint.id
        clientID = endpoint.clientID
        url = endpoint.url
        events = endpoint.eventTypes.joined(separator: ", ")
        enabled = endpoint.enabled
        state = endpoint.enabled ? "enabled" : "disabled" + (endpoint.disabledReason.map { ": \($0)" } ?? "")
        stateClass = endpoint.enabled ? "delivered" : "failed"
        successRate = health.successRate.map { String(format: "%.1f %%", $0 * 100) } ?? "—"
        attempts = health.attempts
        lastError = health.lastError ?? ""
        rate = endpoint.maxRate.map { "\($0)/s" } ?? "unlimited"
        signatures = endpoint.signatures.sorted().map(\.rawValue).joined(separator: ", ")
        self.csrf = csrf
    }
}
