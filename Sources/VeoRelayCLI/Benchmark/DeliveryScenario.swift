import Foundation
import Hummingbird
import Logging
import Synchronization
import VeoRelay
import VeoRelayDevTools

/// Draining pending webhooks against the fastest this machine posts the same signed bodies to the
/// same receiver: the relay's dispatcher working through `events` pending `task.succeeded` events
/// (claimed, signed, POSTed, each attempt recorded) versus an AsyncHTTPClient loop that signs and
/// POSTs the bodies the relay sent, at the same concurrency. The receiver verifies every signature.
struct DeliveryScenario {
    var events: Int
    var concurrency = 32
    var rounds = 3

    func run() async throws -> [BenchmarkRow] {
        let secret = WebhookSecret.generate()
        let received = DeliveryCounter()
        let sink = try WebhookSink(secret: secret, captureFile: nil) { delivery in
            if delivery.verified { received.record(delivery.body) }
        }
        let router = Router()
        sink.addRoutes(to: router)
        let ports = PortBook()
        let sinkServer = Background([loopbackServer(router, name: "sink", ports: ports)])
        let sinkURL = "http://127.0.0.1:\(try await ports.wait("sink"))/hook"

        var relayRates: [Double] = [], baselineRates: [Double] = []
        var bodies: [Data] = []
        for _ in 0..<rounds {
            let (rate, sent) = try await measureRelay(secret: secret, sinkURL: sinkURL, received: received)
            relayRates.append(rate)
            if bodies.isEmpty { bodies = sent }
            baselineRates.append(try await measureBaseline(bodies: bodies, secret: secret, sinkURL: sinkURL, received: received))
        }
        let wrkRates = try await postedByWrk(bodies.first ?? Data(), secret: secret, sinkURL: sinkURL, seconds: events >= 1_000 ? 5 : 1)
        try await sinkServer.stop()
        let relayRate = median(relayRates), baselineRate = median(baselineRates)
        return [BenchmarkRow(scenario: "delivery", measure: "signed webhooks/s, \(events) pending, concurrency \(concurrency) (median of \(rounds))",
                             relay: format(relayRate, digits: 0), baseline: format(baselineRate, digits: 0),
                             ratio: format(relayRate / baselineRate), target: "≥ 0.70")]
            + (wrkRates.map { rate in
                [BenchmarkRow(scenario: "delivery", measure: "signed webhooks/s vs wrk (C load generator, \(concurrency) connections) posting one "
                                 + "signed body to the same sink, which verifies each", relay: format(relayRate, digits: 0),
                              baseline: format(rate, digits: 0), ratio: format(relayRate / rate), target: "≥ 0.50"),
                 // The HTTP client the relay must use, with nothing of the relay around it, against the same wrk:
                 // the most any dispatcher built on it could reach.
                 BenchmarkRow(scenario: "delivery", measure: "the AsyncHTTPClient loop alone (signs and posts, no store) vs the same wrk",
                              relay: format(baselineRate, digits: 0), baseline: format(rate, digits: 0), ratio: format(baselineRate / rate))]
            } ?? [])
    }

    /// What wrk posts to the sink in `seconds` (median of `rounds`): one body, signed once (the sink
    /// verifies each, as it does the relay's); nil without wrk.
    func postedByWrk(_ body: Data, secret: WebhookSecret, sinkURL: String, seconds: Int) async throws -> Double? {
        guard let wrk = Wrk.find(connections: concurrency, seconds: seconds) else {
            Console.line("delivery: wrk not found (apt-get install wrk): its row is skipped")
            return nil
        }
        var rates: [Double] = []
        for _ in 0..<rounds {
            let (id, timestamp) = (Identifier.message(), Date().unixSeconds)
            let headers = [("Content-Type", "application/json"), ("webhook-id", id), ("webhook-timestamp", String(timestamp)),
                           ("webhook-signature", WebhookSignature.header(id: id, timestamp: timestamp, body: body, secrets: [secret]))]
            let result = try await wrk.post(sinkURL, body: body, headers: headers)
            guard result.failed == 0 else { throw BenchmarkFailure("delivery under wrk: \(result.failed) failed requests") }
            rates.append(result.rate)
        }
        return median(rates)
    }

    /// Webhooks per second from the moment the relay starts until the receiver has verified all of
    /// them; the bodies it sent.
    func measureRelay(secret: WebhookSecret, sinkURL: String, received: DeliveryCounter) async throws -> (Double, [Data]) {
        var relay = BenchmarkRelay(directory: NSTemporaryDirectory(), secret: secret, upstreamURL: "http://127.0.0.1:9")
        relay.withoutUpstreamTraffic()
        relay.configuration.engine.deliveryConcurrency = concurrency
        relay.configuration.engine.destinations.maxConcurrent = concurrency
        defer { relay.removeDatabase() }
        let store = try await StoreLocation.open(relay.database, logger: Logger(label: "bench"))
        defer { store.close() }
        received.expect(events, keepingBodies: true)
        let (_, running, _) = try await relay.start(store: store) {
            try await Self.fill(store, events: events, callbackURL: sinkURL)
        }
        let started = ContinuousClock.now
        let bodies = await received.wait()
        let seconds = (ContinuousClock.now - started).seconds
        try await running.stop()
        return (Double(events) / seconds, bodies)
    }

    /// Signs and POSTs the same bodies, `concurrency` at a time, as fast as the receiver takes them.
    func measureBaseline(bodies: [Data], secret: WebhookSecret, sinkURL: String, received: DeliveryCounter) async throws -> Double {
        received.expect(bodies.count, keepingBodies: false)
        let result = try await LoadGenerator(connections: concurrency).run(count: bodies.count, expected: .noContent) { index in
            Dispatcher.request(to: sinkURL, eventID: Identifier.message(), payload: bodies[index], timestamp: Date().unixSeconds, credentials: [.hmac(secret)])
        }
        _ = await received.wait()
        guard result.failed == 0 else { throw BenchmarkFailure("the baseline had \(result.failed) failed requests") }
        return result.rate
    }

    /// `events` tasks that succeeded, each with its `task.succeeded` event pending and due, written
    /// through the store's own API (its schema, its transactions).
    static func fill(_ store: any RelayStore, events: Int, callbackURL: String) async throws {
        guard let client = try await store.client(keyHash: APIKey.hash(BenchmarkRelay.apiKey)) else { throw BenchmarkFailure("no client") }
        let clock = SystemClock()
        let request = try RequestValidator().validate(.object([
            "model": .string("veo3.1-fast-official"), "prompt": .string("a golden retriever running on the beach, sunset, cinematic"),
            "callback_url": .string(callbackURL)]))
        let transitions = TaskTransitions(store: store, clock: clock, dispatcherWake: WakeSignal())
        let video = JSONValue.object(["videos": .array([.object(["url": .string("https://cdn.example.com/video.mp4"),
                                                                 "expires_at": .int(4_102_444_800)])])])
        let batch = 1_000
        for first in stride(from: 0, to: events, by: batch) {
            let count = min(batch, events - first)
            let now = clock.now()
            _ = try await store.insert((0..<count).map { _ in TaskInsertion(RelayTask(clientID: client.id, request: request, now: now), idempotency: nil) })
            let lease = Lease(owner: "bench/fill/\(first)", expiresAt: now.addingTimeInterval(3_600))
            for var task in try await store.claimTasks(.submission(), now: now, limit: count, lease: lease) {
                task.beginSubmission()
                task.submitted(UpstreamSubmission(taskID: "upstream-\(task.id)", answer: "{}"), at: now, firstPollAt: now)
                let type = task.observe(UpstreamTaskView(status: "completed", progress: 100, result: video), at: now, nextPollAt: now)
                try await transitions.save(task, lease: lease, announcing: type)
            }
        }
    }
}

/// Counts verified deliveries and lets one waiter know when the expected number has arrived.
final class DeliveryCounter: Sendable {
    private struct State {
        var expected = 0
        var bodies: [Data] = []
        var count = 0
        var keepBodies = false
        var waiter: CheckedContinuation<[Data], Never>?
    }

    private let state = Mutex(State())

    func expect(_ count: Int, keepingBodies: Bool) {
        state.withLock { $0 = State(expected: count, keepBodies: keepingBodies) }
    }

    func record(_ body: Data) {
        let finished: (CheckedContinuation<[Data], Never>, [Data])? = state.withLock { state in
            state.count += 1
            if state.keepBodies { state.bodies.append(body) }
            guard state.count == state.expected, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, state.bodies)
        }
        if let finished { finished.0.resume(returning: finished.1) }
    }

    /// Returns the kept bodies once `expected` deliveries have arrived.
    func wait() async -> [Data] {
        await withCheckedContinuation { continuation in
            let bodies: [Data]? = state.withLock { state in
                if state.count >= state.expected { return state.bodies }
                state.waiter = continuation
                return nil
            }
            if let bodies { continuation.resume(returning: bodies) }
        }
    }
}
