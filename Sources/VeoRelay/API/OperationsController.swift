import Hummingbird
import Prometheus

/// The routes operators and orchestrators call, outside `/v1` and without authentication:
/// liveness, readiness, metrics and the API description.
struct OperationsController {
    let store: any StoreMaintenance
    let stopState: StopState
    let metrics: PrometheusCollectorRegistry
    let sampler: MetricsSampler
    let openAPI: String
    /// Whether the link to the database is encrypted (`StoreLocation.link`), said with readiness.
    let databaseLink: String

    /// How long readiness waits for the database before calling it unavailable.
    static let readinessTimeout: Duration = .seconds(2)

    func addRoutes(to router: Router<RelayRequestContext>) {
        // Liveness: the process serves requests. Nothing outside it is consulted, so a database outage
        // makes the relay unready, never restarted.
        router.get("/healthz") { _, _ in try JSONResponse.make(.ok, ["status": "ok"]) }
        router.get("/readyz") { _, _ in try await readiness() }
        router.get("/metrics") { _, _ in
            await sampler.sample()
            var text: [UInt8] = []
            metrics.emit(into: &text)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: openAPI)))
        }
    }

    /// 200 when the database answers with this build's schema and the relay is not stopping;
    /// otherwise 503 with the reason, so a load balancer sends the work elsewhere.
    func readiness() async throws -> Response {
        func unavailable(_ reason: String) throws -> Response {
            try JSONResponse.make(.serviceUnavailable, ["status": "unavailable", "reason": reason, "database_link": databaseLink])
        }
        if stopState.isStopping { return try unavailable("the relay is stopping") }
        do {
            try await answer(within: Self.readinessTimeout) { [store] in try await store.checkReady() }
            return try JSONResponse.make(.ok, ["status": "ready", "database_link": databaseLink])
        } catch is TimedOut {
            return try unavailable("the database did not answer within \(Self.readinessTimeout)")
        } catch {
            return try unavailable("the database is not usable: \(Self.reason(error))")
        }
    }

    /// One line, without connection details that may carry credentials.
    static func reason(_ error: any Error) -> String {
        let text = error is StoreNotReady ? "\(error)" : PostgresStore.reason(error)
        return String(text.split(separator: "\n").first ?? "").prefix(200).description
    }
}
