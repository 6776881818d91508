import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import Tracing
import NIOCore
import Synchronization

/// Delivers webhook events to each destination: signs each attempt, POSTs it, and decides from the
/// answer whether the delivery is done, to be retried later (per the stored schedule), exhausted, or gone.
public struct Dispatcher: PipelineStage {
    let store: any Outbox
    let http: HTTPClient
    let clock: any WallClock
    public let leases: LeaseIssuer
    let gate: DestinationGate
    let configuration: EngineConfiguration
    let logger: Logger
    /// Attempts finishing together are recorded in one transaction.
    let records: GroupCommit<AttemptRecord, Bool>
    /// When the deliveries this instance's claims put back for their endpoints' rate fall due.
    let heldUntil = SlotHint()

    init(store: any Outbox, http: HTTPClient, clock: any WallClock, leases: LeaseIssuer, gate: DestinationGate,
         configuration: EngineConfiguration, logger: Logger) {
        self.store = store
        self.http = http
        self.clock = clock
        self.leases = leases
        self.gate = gate
        self.configuration = configuration
        self.logger = logger
        records = GroupCommit { [store] batch in try await store.recordAttempts(batch) }
    }

    public static let userAgent = "veo-relay-webhooks/1"
    static let excerptBytes = 1_024

    public var name: String { "dispatcher" }

    public struct Claim: Sendable {
        public var delivery: PendingDelivery
        public var lease: Lease
    }

    /// Claims due events for destinations that can take them; the events beyond their destinations'
    /// free slots go straight back, together. Once a slot is taken, the claim does not fail: a slot
    /// taken for an attempt that never runs would stay taken for as long as the relay runs.
    public func claim(limit: Int) async throws -> [Claim] {
        let lease = leases.next()
        let now = clock.now()
        let batch = try await store.claimDeliveryBatch(now: now, limit: limit, lease: lease, excluding: gate.blocked(at: now))
        heldUntil.add(batch.heldUntil, after: now)
        var admitted: [Claim] = [], refused: [DeliveryKey] = []
        for delivery in batch.deliveries {
            if gate.admit(delivery.destination, at: now) {
                admitted.append(Claim(delivery: delivery, lease: lease))
            } else {
                refused.append(delivery.key)
            }
        }
        do {
            try await store.releaseDeliveries(refused, lease: lease)
        } catch {
            // The admitted hold their destinations' slots, which only their attempts give back: they go
            // on. The refused come back when their lease expires.
            logger.warning("could not give back deliveries beyond their destinations' slots; they return when their lease expires",
                           metadata: ["deliveries": "\(refused.count)", "error": "\(error)"])
        }
        return admitted
    }

    public func releaseLeases() async throws {
        try await store.releaseDeliveryLeases(ownerPrefix: leases.ownerPrefix)
    }

    public func process(_ claim: Claim) async {
        let delivery = claim.delivery
        let started = clock.now()
        let outcome: Outcome = await TaskTrace.span("webhook.deliver", continuing: delivery.traceParent, taskID: delivery.taskID) { span in
            span.attributes["veo_relay.event_id"] = delivery.eventID
            span.attributes["veo_relay.destination"] = delivery.key.target.description
            span.attributes["veo_relay.attempt"] = delivery.attempts + 1
            let answer = await self.attempt(delivery, at: started)
            span.attributes["http.response.status_code"] = answer.statusCode
            if !(200..<300).contains(answer.statusCode ?? 0) { span.setStatus(SpanStatus(code: .error)) }
            return answer
        }
        gate.finish(delivery.destination, healthy: outcome.destinationHealthy, at: clock.now())
        let attempt = DeliveryAttempt(key: delivery.key, attemptedAt: started, statusCode: outcome.statusCode,
                                      latency: outcome.latency, error: outcome.error, responseExcerpt: outcome.excerpt)
        let resolution = resolve(outcome, attemptsMade: delivery.attempts + 1, now: clock.now())
        Counter(label: "veo_relay_delivery_attempts_total", dimensions: [("result", Self.label(resolution))]).increment()
        Timer(label: "veo_relay_delivery_duration_seconds").recordSeconds(outcome.latency)
        if resolution == .exhausted { Counter(label: "veo_relay_dead_letters_total").increment() }
        logger.info("delivery attempt", metadata: [
            "event_id": "\(delivery.eventID)", "task_id": "\(delivery.taskID ?? "-")", "destination": "\(delivery.key.target)",
            "attempt": "\(delivery.attempts + 1)",
            "status": "\(outcome.statusCode.map(String.init) ?? "-")", "result": "\(Self.label(resolution))",
        ])
        // The slot is free once the receiver has answered: the record joins the next group commit
        // (the event stays leased until then), and `settle` waits for it before leases are given back.
        await records.enqueue(AttemptRecord(attempt, resolution: resolution, lease: claim.lease)) { [logger] result in
            let problem: String? = switch result {
            case .success(true): nil
            case .success(false): "lease lost"
            case .failure(let error): "\(error)"
            }
            if let problem { logger.error("could not record delivery attempt", metadata: ["event_id": "\(delivery.eventID)", "error": "\(problem)"]) }
        }
    }

    public func settle() async {
        await records.flush()
    }

    /// A rate-limited endpoint's next slot may come sooner than the idle interval: the loop wakes for it.
    public func untilNextDue() async -> Duration? {
        untilNextScheduled()
    }

    public func untilNextScheduled() -> Duration? {
        let now = clock.now()
        guard let slot = heldUntil.first(after: now) else { return nil }
        return .seconds(min(slot.timeIntervalSince(now), 86_400))
    }

    public struct Outcome: Sendable {
        public var statusCode: Int?
        var retryAfter: TimeInterval?
        public var latency: TimeInterval
        public var error: String?
        public var excerpt: String?

        /// A destination that answers, even with a 4xx, is up; silence, 5xx and 429 count against it.
        var destinationHealthy: Bool {
            guard let statusCode else { return false }
            return statusCode < 500 && statusCode != 429
        }
    }

    /// The Standard Webhooks POST of `payload` as event `eventID`, signed at `timestamp` with every
    /// credential given (`v1` and `v1a` entries side by side).
    public static func request(to url: String, eventID: String, payload: Data, timestamp: Int, credentials: [SigningCredential]) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: userAgent)
        request.headers.add(name: "webhook-id", value: eventID)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-signature",
                            value: WebhookSignature.header(id: eventID, timestamp: timestamp, body: payload, credentials: credentials))
        request.body = .bytes(ByteBuffer(bytes: payload))
        return request
    }

    func attempt(_ delivery: PendingDelivery, at now: Date) async -> Outcome {
        await Self.post(delivery.payload, as: delivery.eventID, to: delivery.url, signedWith: delivery.signingSecrets, http: http,
                        timeout: configuration.deliveryTimeout, at: now)
    }

    /// One signed POST (stored credential texts; an unreadable one is skipped) and what came of it;
    /// never throws (no answer is an outcome too).
    static func post(_ payload: Data, as eventID: String, to url: String, signedWith secrets: [String], http: HTTPClient,
                     timeout: TimeInterval, at now: Date) async -> Outcome {
        let request = Self.request(to: url, eventID: eventID, payload: payload, timestamp: now.unixSeconds,
                                   credentials: secrets.compactMap { try? SigningCredential($0) })
        let started = ContinuousClock.now
        func elapsed() -> TimeInterval { (ContinuousClock.now - started).seconds }
        do {
            let response = try await http.execute(request, timeout: .interval(timeout))
            let body = try? await response.body.collect(upTo: Self.excerptBytes * 64)
            let excerpt = body.map { String(decoding: Data(buffer: $0).prefix(Self.excerptBytes), as: UTF8.self) }
            return Outcome(statusCode: Int(response.status.code),
                           retryAfter: RetryAfter.seconds(response.headers.first(name: "Retry-After"), now: now,
                                                          maximum: RetryAfter.deliveryMaximum),
                           latency: elapsed(), error: nil, excerpt: excerpt)
        } catch {
            return Outcome(statusCode: nil, retryAfter: nil, latency: elapsed(), error: "\(error)", excerpt: nil)
        }
    }

    /// 2xx delivered; 410 gone; anything else (3xx included: redirects are never followed) retried
    /// per the schedule, waiting at least `Retry-After` (at most a day) on 429 and 503.
    func resolve(_ outcome: Outcome, attemptsMade: Int, now: Date) -> DeliveryResolution {
        switch outcome.statusCode {
        case (200..<300)?: return .delivered
        case 410?: return .gone
        default:
            let honoured = [429, 503].contains(outcome.statusCode ?? 0) ? outcome.retryAfter : nil
            guard let next = configuration.retrySchedule.nextAttempt(after: attemptsMade, now: now, retryAfter: honoured) else {
                return .exhausted
            }
            return .retry(at: next)
        }
    }

    static func label(_ resolution: DeliveryResolution) -> String {
        switch resolution {
        case .delivered: "delivered"
        case .retry: "retry"
        case .exhausted: "exhausted"
        case .gone: "gone"
        }
    }
}

/// A scheduling hint shared by the dispatcher's claims and its loop: in memory on purpose, as what to
/// deliver stays in the database; a lost hint only means waiting the idle interval.
final class SlotHint: Sendable {
    private let times = Mutex<[Date]>([])

    /// Keeps `new` and what is still ahead of `now`, sorted.
    func add(_ new: [Date], after now: Date) {
        times.withLock { times in times = (times + new).filter { $0 > now }.sorted() }
    }

    func first(after now: Date) -> Date? {
        times.withLock { $0.first { $0 > now } }
    }
}
