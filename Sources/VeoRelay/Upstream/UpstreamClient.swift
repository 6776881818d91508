import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// How an upstream call failed, in the terms the engine acts on.
public enum UpstreamError: Error, Equatable, CustomStringConvertible {
    /// The upstream refused the request for good (bad parameters, key, balance, permission).
    case rejected(status: Int, message: String)
    /// Worth retrying: rate limit, server error, or the request never left the relay.
    case transient(status: Int?, message: String, retryAfter: TimeInterval?)
    /// The request may have reached the upstream but no answer came back.
    case outcomeUnknown(message: String)
    /// The upstream does not know this task id.
    case notFound(message: String)

    public var description: String {
        switch self {
        case .rejected(let status, let message): "upstream rejected the request (\(status)): \(message)"
        case .transient(let status, let message, _): "upstream unavailable (\(status.map(String.init) ?? "no response")): \(message)"
        case .outcomeUnknown(let message): "no answer from the upstream after sending: \(message)"
        case .notFound(let message): "upstream task not found: \(message)"
        }
    }
}

/// The upstream's two endpoints, with every failure classified. Holds the upstream key and never
/// includes it in an error or log line.
public struct UpstreamClient: Sendable {
    public var baseURL: String
    private let apiKey: Redacted
    private let http: HTTPClient
    private let timeout: TimeAmount
    /// Told about every request's outcome, so the upstream's health is judged on all traffic.
    let gate: UpstreamGate?

    public init(baseURL: String, apiKey: String, http: HTTPClient, timeout: TimeAmount = .seconds(30), gate: UpstreamGate? = nil) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = Redacted(apiKey)
        self.http = http
        self.timeout = timeout
        self.gate = gate
    }

    /// Sends a paid submission and returns the upstream task id.
    public func submit(_ request: GenerationRequest) async throws(UpstreamError) -> String {
        let body = try? JSONCoding.encode(request)
        let response = try await send(.POST, path: "/v1/videos/generations", body: body, resendable: false)
        switch response.status {
        case 200..<300:
            guard let taskID = Self.submittedTaskID(in: response.json) else {
                // Accepted, but we cannot tell what: treat like a lost answer, never resubmit.
                throw .outcomeUnknown(message: "the upstream answered \(response.status) without a task id")
            }
            return taskID
        case 408, 409, 425, 429, 500...599:
            throw .transient(status: response.status, message: response.message, retryAfter: response.retryAfter)
        default:
            throw .rejected(status: response.status, message: response.message)
        }
    }

    public func task(id: String) async throws(UpstreamError) -> UpstreamTaskView {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
        let response = try await send(.GET, path: "/v1/tasks/\(escaped)", body: nil, resendable: true)
        switch response.status {
        case 200..<300:
            guard let data = response.json?["data"], let view = Self.taskView(from: data) else {
                throw .transient(status: response.status, message: "unreadable task status from the upstream", retryAfter: nil)
            }
            return view
        case 404:
            throw .notFound(message: response.message)
        default:
            // Polling is free and safe to repeat, so every other failure is worth another poll later.
            throw .transient(status: response.status, message: response.message, retryAfter: response.retryAfter)
        }
    }

    // MARK: Transport

    private struct Response {
        var status: Int
        var json: JSONValue?
        var retryAfter: TimeInterval?

        var message: String { json.flatMap(UpstreamTaskView.message(in:)) ?? "HTTP \(status)" }
    }

    private func send(_ method: HTTPMethod, path: String, body: Data?, resendable: Bool) async throws(UpstreamError) -> Response {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey.value)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await http.execute(request, timeout: timeout)
            let status = Int(response.status.code)
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(TimeInterval.init)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            // Recorded once, after the whole answer arrived: a connection lost mid-body is a failure.
            gate?.record(status == 429 ? .throttled(retryAfter: retryAfter) : status >= 500 ? .failed : .answered)
            let json = try? JSONValue.parse(Data(buffer: bytes))
            if (200..<300).contains(status), json == nil {
                throw resendable
                    ? UpstreamError.transient(status: status, message: "malformed JSON from the upstream", retryAfter: nil)
                    : UpstreamError.outcomeUnknown(message: "malformed JSON from the upstream")
            }
            return Response(status: status, json: json, retryAfter: retryAfter)
        } catch let error as UpstreamError {
            throw error
        } catch {
            gate?.record(.failed)
            if resendable || Self.neverSent(error) {
                throw .transient(status: nil, message: "\(error)", retryAfter: nil)
            }
            throw .outcomeUnknown(message: "\(error)")
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

    // MARK: Parsing (tolerant: field shapes vary between the gateway's models)

    static func submittedTaskID(in json: JSONValue?) -> String? {
        let entry: JSONValue? = switch json?["data"] {
        case .array(let items)?: items.first
        case let other: other
        }
        return (entry?["task_id"] ?? entry?["id"])?.stringValue
    }

    static func taskView(from data: JSONValue) -> UpstreamTaskView? {
        guard let status = data["status"]?.stringValue?.lowercased() else { return nil }
        func number(_ key: String) -> Double? {
            data[key]?.numberValue ?? data[key]?.stringValue.flatMap(Double.init)
        }
        return UpstreamTaskView(
            status: status, progress: number("progress").map { Int($0) }, result: data["result"], error: data["error"],
            created: number("created").map { Int($0) }, completed: number("completed").map { Int($0) },
            estimatedTime: number("estimated_time"), actualTime: number("actual_time"))
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
            timeout: .init(connect: .milliseconds(Int64(connectTimeout * 1000))),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: perHostConnections))
        if let allowedPeers {
            configuration.http1_1ConnectionDebugInitializer = CallbackGuard.connectionCheck(allowedPeers)
            configuration.http2ConnectionDebugInitializer = CallbackGuard.connectionCheck(allowedPeers)
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
