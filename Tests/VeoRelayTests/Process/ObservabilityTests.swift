import Foundation
import Hummingbird
import Synchronization
import Testing
@testable import VeoRelay

/// What an operator sees of a running relay process: readiness, the metrics catalogue, JSON logs.
@Suite(.stopsWhatItStarts) struct ObservabilityTests {
    /// Every series the metrics table (docs/operations.md) lists, as named on `/metrics`.
    static let catalogue = [
        "veo_relay_tasks", "veo_relay_oldest_due_seconds",
        "veo_relay_upstream_requests_total", "veo_relay_upstream_request_duration_seconds_bucket",
        "veo_relay_upstream_breaker_open", "veo_relay_upstream_budget_tokens", "veo_relay_upstream_account_held_seconds", "veo_relay_upstream_key_in_flight",
        "veo_relay_delivery_attempts_total", "veo_relay_delivery_duration_seconds_bucket",
        "veo_relay_destination_circuits_open", "veo_relay_dead_letters_total",
        "hb_requests", "http_server_request_duration_bucket",
        "veo_relay_start_time_seconds", "veo_relay_build_info",
        "veo_relay_submissions_total", "veo_relay_polls_total", "veo_relay_events_total", "veo_relay_tasks_accepted_total",
        "veo_relay_open_streams", "veo_relay_usage_tasks_total", "veo_relay_usage_video_seconds_total",
    ]

    @Test func metricsShowEveryCatalogueSeriesAfterAFaultBurstAndAFailingDestination() async throws {
        // The upstream refuses the first two submissions (a fault burst), then works.
        let upstream = ScriptedUpstream(submit: { number in
            number <= 2 ? .init(status: .serviceUnavailable, body: #"{"code": 503, "message": "busy"}"#) : ScriptedUpstream.accepted(number)
        }, poll: { _ in ScriptedUpstream.completed })
        let upstreamServer = try await upstream.start()
        let healthy = WebhookReceiver()
        let failing = WebhookReceiver { _ in .init(status: .internalServerError) }
        let (healthyServer, failingServer) = (try await healthy.start(), try await failing.start())
        let relay = try RelayProcess(["serve", "--port", "0"], environment: RelayProcess.testEnvironment.merging([
            "VEO_RELAY_UPSTREAM_URL": upstreamServer.baseURL, "VEO_RELAY_UPSTREAM_API_KEY": "upstream-key",
            // One attempt, then a dead letter; one failure opens the destination's circuit.
            "VEO_RELAY_RETRY_SCHEDULE": "0", "VEO_RELAY_BREAKER_THRESHOLD": "1",
            // The scripted jobs are finished at once; poll them without waiting for a Veo-sized estimate.
            "VEO_RELAY_POLL_FIXED_INTERVAL": "100ms",
        ]) { $1 })
        let api = APIClient(baseURL: "http://127.0.0.1:\(try await relay.listeningPort())")
        for server in [healthyServer, failingServer] {
            _ = try await api.submit(RelayHarness.generation(callbackURL: server.baseURL + "/hook"))
        }
        _ = try await relay.explaining { try await healthy.next() }
        try await eventually("the failing destination's event to become a dead letter") {
            guard case .array(let failed)? = try await api.get("/v1/deliveries?state=failed").json["data"] else { return false }
            return failed.count == 1
        }

        let scrape = try await api.get("/metrics")
        #expect(scrape.status == 200)
        let samples = PrometheusText(scrape.text)
        for name in Self.catalogue {
            #expect(samples.has(name), "\(name) is on /metrics")
        }
        #expect(samples.value("veo_relay_tasks", ["state": "succeeded"]) == 2)
        #expect(samples.value("veo_relay_tasks", ["state": "queued"]) == 0)
        #expect(samples.value("veo_relay_upstream_requests_total", ["endpoint": "submit", "status_class": "5xx"]) == 2)
        #expect(samples.value("veo_relay_upstream_requests_total", ["endpoint": "submit", "status_class": "2xx"]) == 2)
        #expect((samples.value("veo_relay_upstream_requests_total", ["endpoint": "poll", "status_class": "2xx"]) ?? 0) >= 2)
        #expect((samples.value("veo_relay_upstream_request_duration_seconds_count", ["endpoint": "poll"]) ?? 0) >= 2)
        #expect(samples.value("veo_relay_upstream_breaker_open", [:]) == 0, "two failures stay under the upstream breaker's threshold")
        #expect((samples.value("veo_relay_upstream_budget_tokens", [:]) ?? 0) > 0)
        #expect(samples.value("veo_relay_delivery_attempts_total", ["result": "delivered"]) == 1)
        #expect(samples.value("veo_relay_delivery_attempts_total", ["result": "exhausted"]) == 1)
        #expect(samples.value("veo_relay_delivery_duration_seconds_count", [:]) == 2, "one attempt per destination")
        #expect(samples.value("veo_relay_destination_circuits_open", [:]) == 1)
        #expect(samples.value("veo_relay_dead_letters_total", [:]) == 1)
        let fast = "veo3.1-fast-official"
        #expect(samples.value("veo_relay_usage_tasks_total", ["model": fast, "outcome": "accepted"]) == 2)
        #expect(samples.value("veo_relay_usage_tasks_total", ["model": fast, "outcome": "succeeded"]) == 2)
        #expect(samples.value("veo_relay_usage_video_seconds_total", ["model": fast]) == 16, "two of the default 8 s")
        #expect(samples.value("veo_relay_oldest_due_seconds", ["stage": "delivery"]) == 0, "nothing is due any more")
        #expect(samples.value("hb_requests", ["http_route": "/v1/videos/generations", "http_response_status_code": "200"]) == 2)
        #expect((samples.value("veo_relay_start_time_seconds", [:]) ?? 0) > 1_700_000_000)
        #expect(samples.value("veo_relay_build_info", ["version": RelayVersion.current]) == 1)

        relay.signal(SIGTERM)
        #expect(try await relay.exitStatus() == 0)
        for server in [upstreamServer, healthyServer, failingServer] { try await server.stop() }
    }

    /// A stopping relay fails readiness first and keeps serving through its grace (here long enough
    /// that the test, not the clock, ends it with the second signal).
    @Test func readinessIsWithdrawnWhileTheRelayKeepsServingAtStop() async throws {
        let relay = try RelayProcess(["serve", "--port", "0", "--readiness-grace", "3600s", "--drain-timeout", "7200s"],
                                     environment: RelayProcess.testEnvironment)
        let api = APIClient(baseURL: "http://127.0.0.1:\(try await relay.listeningPort())")
        let ready = try await api.get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.json["status"]?.stringValue == "ready")

        relay.signal(SIGTERM)
        try await eventually("/readyz to turn 503") { try await api.get("/readyz").status == 503 }
        let stopping = try await api.get("/readyz")
        #expect(stopping.json["reason"]?.stringValue == "the relay is stopping", "\(stopping.json)")
        #expect(try await api.get("/healthz").status == 200)
        _ = try await api.submit(RelayHarness.generation(callbackURL: "http://127.0.0.1:9/hook"))
        relay.signal(SIGTERM)
        #expect(try await relay.exitStatus() == 128 + SIGTERM, "the second signal stops at once")
    }

    /// The relay's PostgreSQL database taken away under it (connections ended, new ones refused):
    /// unready (not dead, not flooding its log), then ready again once the database is back.
    @Test(.enabled(if: TestPostgres.adminURL != nil))
    func readinessFollowsPostgreSQLAwayAndBack() async throws {
        let url = try await TestPostgres.freshDatabase()
        let relay = try RelayProcess(["serve", "--port", "0", "--database", url], environment: RelayProcess.testEnvironment)
        let port = try await relay.listeningPort()
        let api = APIClient(baseURL: "http://127.0.0.1:\(port)", key: nil)
        #expect(try await api.get("/readyz").status == 200)
        // On PostgreSQL the relay runs on the database's clock and reports how far this host is from it.
        let offset = try #require(try await api.get("/metrics").text.split(separator: "\n")
            .first { $0.hasPrefix("veo_relay_clock_offset_seconds ") }?.split(separator: " ").last.flatMap { Double($0) })
        #expect(abs(offset) < 5, "the test's PostgreSQL runs on this host")

        try await TestPostgres.takeAway(url)
        try await eventually("/readyz to turn 503") { try await api.get("/readyz").status == 503 }
        // Stay in the outage for a while: every answer is an unready 503 with a reason, liveness holds.
        for _ in 0..<10 {
            let answer = try await api.get("/readyz")
            #expect(answer.status == 503)
            #expect(answer.json["reason"]?.stringValue?.contains("database") == true, "\(answer.json)")
            #expect(try await api.get("/healthz").status == 200)
        }
        let refused = try await APIClient(baseURL: api.baseURL).get("/v1/tasks/task_unknown")
        #expect(refused.status == 503 && refused.json["error"]?["type"] == .string("unavailable"), "no 500 for a database away: \(refused.json)")
        let outageOutput = relay.outputSize

        try await TestPostgres.giveBack(url)
        try await eventually("/readyz to turn 200 again", within: .seconds(120)) { try await api.get("/readyz").status == 200 }
        let authorised = APIClient(baseURL: api.baseURL)
        _ = try await authorised.submit(RelayHarness.generation(callbackURL: "http://127.0.0.1:9/hook"))
        relay.signal(SIGTERM)
        #expect(try await relay.exitStatus() == 0, "it never crashed: \(relay.standardError.suffix(1_000))")
        #expect(outageOutput < 64 * 1024, "the outage was logged in bounded size, not \(outageOutput) bytes")
    }

    @Test func jsonLogsAreOneObjectPerLineWithTaskIDs() async throws {
        let receiver = WebhookReceiver()
        let receiverServer = try await receiver.start()
        let relay = try RelayProcess(["serve", "--port", "0", "--log-format", "json", "--simulator-time-scale", "0.01"], environment: RelayProcess.testEnvironment)
        let api = APIClient(baseURL: "http://127.0.0.1:\(try await relay.listeningPort())")
        let taskID = try await api.submit(RelayHarness.generation(callbackURL: receiverServer.baseURL + "/hook"))
        _ = try await receiver.next()
        try await eventually("the delivery to be logged") { relay.standardError.contains("delivery attempt") }
        relay.signal(SIGTERM)
        #expect(try await relay.exitStatus() == 0)

        let lines = relay.standardError.split(separator: "\n")
        #expect(lines.count >= 3)
        var objects: [[String: Any]] = []
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "a JSON object: \(line)")
            if let object { objects.append(object) }
        }
        for object in objects {
            #expect(object["level"] is String && object["time"] is String && object["message"] is String, "\(object)")
        }
        let accepted = objects.first { $0["message"] as? String == "accepted" }
        #expect(accepted?["task_id"] as? String == taskID)
        #expect(accepted?["client_id"] is String)
        let delivery = objects.first { $0["message"] as? String == "delivery attempt" }
        #expect(delivery?["task_id"] as? String == taskID)
        #expect((delivery?["event_id"] as? String)?.hasPrefix("msg_") == true)
        try await receiverServer.stop()
    }

    /// With an OTLP/HTTP collector configured, a task is one trace: the intake request's span is the
    /// parent of the submission, every poll and the delivery attempt, and the webhook request carries
    /// the context of the HTTP client span under that attempt.
    @Test func aTaskIsOneTraceFromIntakeToDelivery() async throws {
        let collector = SpanCollector()
        let collectorServer = try await collector.start()
        let receiver = WebhookReceiver()
        let receiverServer = try await receiver.start()
        var environment = RelayProcess.testEnvironment
        environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/json"
        let relay = try RelayProcess(["serve", "--port", "0", "--simulator-time-scale", "0.01", "--otel-endpoint", collectorServer.baseURL],
                                     environment: environment)
        let api = APIClient(baseURL: "http://127.0.0.1:\(try await relay.listeningPort())")
        let taskID = try await api.submit(RelayHarness.generation(callbackURL: receiverServer.baseURL + "/hook"))
        let delivery = try #require(try await receiver.next().first)
        relay.signal(SIGTERM)
        #expect(try await relay.exitStatus() == 0, "\(relay.standardError.suffix(2_000))")
        try await receiverServer.stop()
        try await collectorServer.stop()

        // Stopping flushed every span; those of this task share one trace rooted at the intake.
        let spans = collector.spans
        let intake = try #require(spans.first { $0.name == "/v1/videos/generations" && $0.kind == 2 }, "\(spans.map(\.name))")
        let ofTask = spans.filter { $0.taskID == taskID }
        #expect(Set(ofTask.map(\.name)).isSuperset(of: ["veo.submit", "veo.poll", "webhook.deliver"]), "\(ofTask.map(\.name))")
        for span in ofTask {
            #expect(span.traceID == intake.traceID, "\(span.name) is in the intake's trace")
            #expect(span.parentSpanID == intake.spanID, "\(span.name) is a child of the intake span")
        }
        let deliverSpan = try #require(ofTask.first { $0.name == "webhook.deliver" })
        let sent = try #require(delivery.traceParent?.firstMatch(of: /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/), "\(delivery.traceParent ?? "none")")
        #expect(String(sent.1) == intake.traceID)
        let request = try #require(spans.first { $0.spanID == String(sent.2) }, "the webhook's traceparent names an exported span")
        #expect(request.parentSpanID == deliverSpan.spanID && request.kind == 3, "the HTTP client span of the attempt: \(request)")
    }
}

/// An OTLP/HTTP (JSON) trace collector: keeps every span it is sent.
final class SpanCollector: Sendable {
    struct Span: Sendable {
        var name: String
        var kind: Int
        var traceID: String
        var spanID: String
        var parentSpanID: String
        var taskID: String?
    }

    private let received = Mutex<[Span]>([])

    var spans: [Span] { received.withLock { $0 } }

    func start() async throws -> RunningServer {
        let router = Router()
        router.post("/v1/traces") { request, _ in
            var request = request
            let body = try JSONValue.parse(Data(buffer: try await request.collectBody(upTo: 16 << 20)))
            let spans = Self.list(body["resourceSpans"]).flatMap { Self.list($0["scopeSpans"]) }
                .flatMap { Self.list($0["spans"]) }.map(Self.span)
            self.received.withLock { $0 += spans }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        return try await RunningServer.start(router: router)
    }

    static func span(_ json: JSONValue) -> Span {
        let taskID = list(json["attributes"]).first { $0["key"]?.stringValue == "veo_relay.task_id" }?["value"]?["stringValue"]
        return Span(name: json["name"]?.stringValue ?? "", kind: json["kind"]?.numberValue.map { Int($0) } ?? 0,
                    traceID: hex(json["traceId"]), spanID: hex(json["spanId"]), parentSpanID: hex(json["parentSpanId"]),
                    taskID: taskID?.stringValue)
    }

    private static func list(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { items } else { [] }
    }

    /// OTLP/JSON asks for hex ids; protobuf's JSON mapping gives base64. Either becomes hex.
    static func hex(_ value: JSONValue?) -> String {
        guard let text = value?.stringValue, !text.isEmpty else { return "" }
        if text.count % 16 == 0, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
        return Data(base64Encoded: text).map { $0.map { String(format: "%02x", $0) }.joined() } ?? text
    }
}

/// Samples of the Prometheus text format, looked up by name and labels.
struct PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]

    init(_ text: String) {
        samples = text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let match = line.firstMatch(of: /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/),
                  let value = Double(match.4) else { return nil }
            var labels: [String: String] = [:]
            for pair in (match.3 ?? "").matches(of: /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/) {
                labels[String(pair.1)] = String(pair.2)
            }
            return Sample(name: String(match.1), labels: labels, value: value)
        }
    }

    func has(_ name: String) -> Bool {
        samples.contains { $0.name == name }
    }

    /// The sample with this name whose labels include `labels`; nil if there is none.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }
}
