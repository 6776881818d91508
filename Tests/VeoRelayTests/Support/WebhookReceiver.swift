import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
@testable import VeoRelay

/// A real HTTP server standing in for a subscriber: records every delivery and answers as the
/// test scripts it (status per attempt, headers).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var id: String
        var timestamp: Int
        var signature: String
        var body: Data
        var path: String
        /// The W3C trace context the relay sent along, if tracing is on.
        var traceParent: String?

        var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }

        func verifies(with secret: String) -> Bool {
            guard let secret = try? WebhookSecret(secret) else { return false }
            return (try? WebhookSignature.verify(id: id, timestamp: timestamp, body: body, header: signature, secret: secret)) != nil
        }

        /// A `v1a` check with the published `whpk_` key alone. Timestamps follow the relay's clock, which
        /// may be a test's manual one: checked against the delivery's own time.
        func verifies(publicKey: String) -> Bool {
            (try? WebhookSignature.verify(id: id, timestamp: timestamp, body: body, header: signature, publicKey: publicKey,
                                          now: Date(timeIntervalSince1970: Double(timestamp)))) != nil
        }

        var type: String? { json["type"]?.stringValue }
    }

    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields = [:]
    }

    private let received = Mutex<[Received]>([])
    private let stream: AsyncStream<Received>
    private let continuation: AsyncStream<Received>.Continuation
    private let answer: @Sendable (_ attempt: Int) async -> Answer

    /// `answer` gets the 1-based number of the delivery to this receiver.
    init(answer: @escaping @Sendable (Int) async -> Answer = { _ in Answer(status: .noContent) }) {
        (stream, continuation) = AsyncStream.makeStream(of: Received.self)
        self.answer = answer
    }

    var all: [Received] { received.withLock { $0 } }

    func start() async throws -> RunningServer {
        let router = Router()
        router.post("**") { request, _ in
            var request = request
            let body = Data(buffer: try await request.collectBody(upTo: 1 << 20))
            func header(_ name: String) -> String { HTTPField.Name(name).flatMap { request.headers[$0] } ?? "" }
            let delivery = Received(id: header("webhook-id"), timestamp: Int(header("webhook-timestamp")) ?? 0,
                                    signature: header("webhook-signature"), body: body, path: request.uri.path,
                                    traceParent: HTTPField.Name("traceparent").flatMap { request.headers[$0] })
            let count = self.received.withLock { list in
                list.append(delivery)
                return list.count
            }
            self.continuation.yield(delivery)
            let answer = await self.answer(count)
            return Response(status: answer.status, headers: answer.headers)
        }
        return try await RunningServer.start(router: router)
    }

    /// Deliveries in arrival order up to and including the first that satisfies `last`.
    func next(until last: @escaping @Sendable (Received) -> Bool, within limit: Duration = .seconds(20)) async throws -> [Received] {
        let stream = self.stream
        return try await VeoRelayTests.within(limit, "a matching webhook delivery") {
            var collected: [Received] = []
            for await delivery in stream {
                collected.append(delivery)
                if last(delivery) { break }
            }
            return collected
        }
    }

    /// The next `count` deliveries, in arrival order.
    func next(_ count: Int = 1, within limit: Duration = .seconds(20)) async throws -> [Received] {
        let stream = self.stream
        return try await VeoRelayTests.within(limit, "\(count) webhook deliveries") {
            var collected: [Received] = []
            for await delivery in stream {
                collected.append(delivery)
                if collected.count == count { break }
            }
            return collected
        }
    }
}

/// Holds any number of waiters until opened (a receiver that accepts the request and never answers).
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let proceed = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
    }

    var isOpen: Bool { state.withLock { $0.open } }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }
}
