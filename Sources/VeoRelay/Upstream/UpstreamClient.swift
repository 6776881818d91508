import AsyncHTTPClient
import Foundation
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Tracing

/// How an upstream call failed, in the terms the engine acts on. `answer` is the start of the raw
/// answer, kept on the task so that an operator can see what the upstream actually said.
public enum UpstreamError: Error, Equatable, CustomStringConvertible {
    /// The upstream refused the request itself, for good (bad parameters, content).
    case rejected(status: Int, message: String)
    /// The upstream account refused work (a balance run out, a key revoked, a permission withdrawn):
    /// nothing was created, and the same request may go once the account is put right.
    case accountRefused(status: Int, message: String)
    /// Worth retrying: rate limit, server error, or the request never left the relay.
    case transient(status: Int?, message: String, retryAfter: TimeInterval?)
    /// The request may have reached the upstream but no usable answer came back.
    case outcomeUnknown(message: String, answer: String?)
    /// The upstream does not know this task id.
    case notFound(message: String)
    /// The upstream answered, but in a shape the relay cannot read.
    case unreadable(status: Int, answer: String)

    /// The start of the raw answer, where there was one worth keeping.
    public var answer: String? {
        switch self {
        case .outcomeUnknown(_, let answer): answer
        case .unreadable(_, let answer): answer
        case .rejected, .accountRefused, .transient, .notFound: nil
        }
    }

    public var description: String {
        switch self {
        case .rejected(let status, let message): "upstream rejected the request (\(status)): \(message)"
        case .accountRefused(let status, let message): "the upstream account refused work (\(status)): \(message)"
        case .transient(let status, let message, _): "upstream unavailable (\(status.map(String.init) ?? "no response")): \(message)"
        case .outcomeUnknown(let message, _): "no usable answer from the upstream after sending: \(message)"
        case .notFound(let message): "upstream task not found: \(message)"
        case .unreadable(let status, let answer): "unreadable answer from the upstream (HTTP \(status)): \(answer.prefix(200))"
        }
    }
}

/// A submission the upstream took: its task id and the raw answer.
public struct UpstreamSubmission: Sendable, Equatable {
    public var taskID: String
    public var answer: String

    public init(taskID: String, answer: String) {
        self.taskID = taskID
        self.answer = answer
    }
}

/// The upstream's two endpoints, with every failure classified. Each call names the key it is made
/// with (`UpstreamKeyRing`), which never appears in an error or log line.
public struct UpstreamClient: Sendable {
    /// Where the upstream is; read per request because the built-in simulator's address is known
    /// only once the relay's own port is bound (`--port 0`).
    private let location: @Sendable () -> String
    private let http: HTTPClient
    private let timeout: TimeAmount
    private let clock: any WallClock
    /// Told about every request's outcome, so the upstream's health is judged on all traffic.
    let gate: UpstreamGate?

    public init(baseURL: String, http: HTTPClient, timeout: TimeAmount = .seconds(30), gate: UpstreamGate? = nil,
                clock: any WallClock = SystemClock()) {
        let trimmed = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.init(location: { trimmed }, http: http, timeout: timeout, gate: gate, clock: clock)
    }

    init(location: @escaping @Sendable () -> String, http: HTTPClient, timeout: TimeAmount, gate: UpstreamGate?, clock: any WallClock) {
        self.location = location
        self.http = http
        self.timeout = timeout
        self.gate = gate
        self.clock = clock
    }

    /// Statuses with which the upstream (or its proxy) refuses work before taking it: safe to resend.
    static let refusedBeforeWork: Set<Int> = [408, 425, 429, 500, 503]

    /// Whether a refusal is about the account rather than the request: 401 (the key), 402 (the balance),
    /// and 403 when it names the balance, a quota, the key or a permission (a 403 may also refuse content).
    static func refusesAccount(status: Int, message: String) -> Bool {
        switch status {
        case 401, 402: true
        case 403: ["balance", "quota", "credit", "insufficient", "key", "token", "permission", "account", "suspend"]
            .contains { message.lowercased().contains($0) }
        default: false
        }
    }

    /// Sends a paid submission. A submission is resent only when the upstream surely did not take
    /// it: a gateway timeout or bad gateway (`502`, `504`, `52x`) may have passed the job on, and an
    /// answer that names no task may still mean one was created, so those are outcome-unknown.
    public func submit(_ request: GenerationRequest, key: Redacted) async throws(UpstreamError) -> UpstreamSubmission {
        let body = try? JSONCoding.encode(request)
        let response = try await send(.POST, path: "/v1/videos/generations", body: body, key: key, endpoint: "submit", resendable: false)
        switch response.effectiveStatus {
        case 200..<300:
            guard let taskID = UpstreamAnswer.submittedTaskID(in: response.json) else {
                throw .outcomeUnknown(message: "the upstream answered \(response.status) without a task id", answer: response.excerpt)
            }
            return UpstreamSubmission(taskID: taskID, answer: response.excerpt)
        case let status where Self.refusedBeforeWork.contains(status) || status == 409:
            throw .transient(status: status, message: response.message, retryAfter: response.retryAfter)
        case let status where Self.refusesAccount(status: status, message: response.message):
            throw .accountRefused(status: status, message: response.message)
        case 500...:
            throw .outcomeUnknown(message: "the upstream answered \(response.effectiveStatus): \(response.message)", answer: response.excerpt)
        case let status:
            throw .rejected(status: status, message: response.message)
        }
    }

    /// A task as the upstream sees it, asked with the key that submitted it (the only one it shows the task to).
    public func task(id: String, key: Redacted) async throws(UpstreamError) -> UpstreamTaskView {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
        let response = try await send(.GET, path: "/v1/tasks/\(escaped)", body: nil, key: key, endpoint: "poll", resendable: true)
        switch response.effectiveStatus {
        case 200..<300:
            guard let json = response.json, let view = UpstreamAnswer.taskView(from: json) else {
                throw .unreadable(status: response.status, answer: response.excerpt)
            }
            return view
        case 404:
            throw .notFound(message: response.message)
        case let status where Self.refusesAccount(status: status, message: response.message):
            // The key's fault (revoked, say), not the task's: the poll waits with the key.
            throw .accountRefused(status: status, message: response.message)
        default:
            // Polling is free and safe to repeat, so every other failure is worth another poll later.
            throw .transient(status: response.effectiveStatus, message: response.message, retryAfter: response.retryAfter)
        }
    }

    // MARK: Transport

    private struct Response {
        var status: Int
        var json: JSONValue?
        var excerpt: String
        var retryAfter: TimeInterval?

        /// The HTTP status, unless a 2xx body says otherwise in its `code`.
        var effectiveStatus: Int {
            (200..<300).contains(status) ? UpstreamAnswer.embeddedStatus(in: json) ?? status : status
        }

        var message: String { json.flatMap(UpstreamTaskView.message(in:)) ?? "HTTP \(effectiveStatus)" }
    }

    private func send(_ method: HTTPMethod, path: String, body: Data?, key: Redacted, endpoint: String, resendable: Bool)
    async throws(UpstreamError) -> Response {
        var request = HTTPClientRequest(url: location() + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key.value)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let started = ContinuousClock.now
        func measured(_ statusClass: String) {
            Counter(label: "veo_relay_upstream_requests_total", dimensions: [("endpoint", endpoint), ("status_class", statusClass)]).increment()
            Timer(label: "veo_relay_upstream_request_duration_seconds", dimensions: [("endpoint", endpoint)])
                .record(duration: ContinuousClock.now - started)
        }
        do {
            let response = try await http.execute(request, timeout: timeout)
            let status = Int(response.status.code)
            let retryAfter = RetryAfter.seconds(response.headers.first(name: "Retry-After"), now: clock.now(),
                                                maximum: RetryAfter.upstreamMaximum)
            let bytes = Data(buffer: try await response.body.collect(upTo: 1 << 20))
            // Recorded once, after the whole answer arrived: a connection lost mid-body is a failure.
            gate?.record(status == 429 ? .throttled(retryAfter: retryAfter) : status >= 500 ? .failed : .answered)
            measured("\(status / 100)xx")
            return Response(status: status, json: try? JSONValue.parse(bytes), excerpt: UpstreamAnswer.excerpt(bytes), retryAfter: retryAfter)
        } catch {
            gate?.record(.failed)
            measured("error")
            if resendable || Self.neverSent(error) {
                throw .transient(status: nil, message: "\(error)", retryAfter: nil)
            }
            throw .outcomeUnknown(message: "\(error)", answer: nil)
        }
    }

    /// True only for failures that happen before the first byte of the request is written:
    /// anything else may have reached the upstream and been paid for.
    static func neverSent(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return [.connectTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout].contains(error)
        }
        if error is NIOConnectionError { return true }
        if let error = error as? IOError { return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        return false
    }
}

extension HTTPClient {
    /// The relay's outbound client: no redirects (a webhook must not be bounced elsewhere), a per-host
    /// connection limit high enough for concurrent deliveries and, for webhooks, a check of the address
    /// each connection actually reached.
    public static func relayClient(connectTimeout: TimeInterval, perHostConnections: Int = 64,
                                   allowedPeers: AddressPolicy? = nil) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .interval(connectTimeout)),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: perHostConnections))
        // Without a tracer bootstrapped (no OTLP endpoint), skip the per-request span bookkeeping that
        // would only feed the no-op tracer.
        if InstrumentationSystem.tracer is NoOpTracer { configuration.tracing.tracer = nil }
        if let allowedPeers {
            configuration.http1_1ConnectionDebugInitializer = CallbackGuard.connectionCheck(allowedPeers)
            configuration.http2ConnectionDebugInitializer = CallbackGuard.connectionCheck(allowedPeers)
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

extension TimeAmount {
    /// A duration in seconds from configuration (validated to a sane range before it gets here).
    static func interval(_ seconds: TimeInterval) -> TimeAmount {
        .nanoseconds(Int64(seconds * 1e9))
    }
}
