import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import VeoRelay

/// A large database against an empty one, on the same store: `rows` running tasks, as many delivered
/// events and their attempt logs, written through the store's own API in batches. Measured: the next
/// claim of each kind, a relay's start-up, intake and `GET /v1/tasks/{id}` latency and its RSS (the
/// relay runs as its own `veo-relay serve` process), and the database's plan for every claim query.
struct ScaleScenario {
    var rows: Int
    var seconds: Duration

    struct Measurement {
        var fillSeconds: Double
        /// p99 of 100 claims each, ms.
        var claims: (submission: Double, poll: Double, delivery: Double)
        var startup: Double
        var intakeP99: Double
        var readP99: Double
        var rssMiB: Double
        var plans: [ClaimPlan]
    }

    /// Rows of the baseline database: few enough to count as empty, enough that the reads find tasks
    /// as they do in the full one (a read that finds nothing is not the same work).
    static let baselineRows = 1_000

    /// Measures `location` nearly empty, then filled to `rows`.
    func run(location: String, store name: String) async throws -> [BenchmarkRow] {
        let empty = try await measure(location, fill: min(rows, Self.baselineRows))
        let full = try await measure(location, fill: rows)
        func ms(_ value: Double) -> String { format(value * 1_000, digits: 2) }
        func claims(_ m: Measurement) -> String { "\(ms(m.claims.submission)) / \(ms(m.claims.poll)) / \(ms(m.claims.delivery))" }
        let scenario = "scale (\(name))"
        var table = [
            BenchmarkRow(scenario: scenario, measure: "fill: \(rows) running tasks + \(rows) delivered events + \(rows) attempt logs, s",
                         relay: format(full.fillSeconds, digits: 0), baseline: "\(min(rows, Self.baselineRows)) of each"),
            BenchmarkRow(scenario: scenario, measure: "next claim p99, ms: submission / poll / delivery (100 claims each)",
                         relay: claims(full), baseline: claims(empty), target: "≤ 5 ms"),
            BenchmarkRow(scenario: scenario, measure: "intake p99, ms (32 connections)", relay: ms(full.intakeP99), baseline: ms(empty.intakeP99),
                         ratio: format(full.intakeP99 / empty.intakeP99), target: "≤ 2×"),
            BenchmarkRow(scenario: scenario, measure: "GET /v1/tasks/{id} p99, ms (32 connections)", relay: ms(full.readP99),
                         baseline: ms(empty.readP99), ratio: format(full.readP99 / empty.readP99), target: "≤ 2×"),
            BenchmarkRow(scenario: scenario, measure: "relay RSS after that load, MiB", relay: format(full.rssMiB, digits: 1),
                         baseline: format(empty.rssMiB, digits: 1), target: "≤ 150 MB"),
            BenchmarkRow(scenario: scenario, measure: "relay start-up to listening, s", relay: format(full.startup),
                         baseline: format(empty.startup)),
        ]
        for plan in full.plans {
            table.append(BenchmarkRow(scenario: scenario, measure: "plan of the \(plan.claim) claim at \(rows) rows", relay: "`\(plan.plan)`",
                                      baseline: "—"))
        }
        return table
    }

    func measure(_ location: String, fill: Int) async throws -> Measurement {
        let store = try await StoreLocation.open(location, logger: .init(label: "bench"))
        let secret = WebhookSecret.generate().encoded
        _ = try await ClientBootstrap.run(store: store, apiKeys: [BenchmarkRelay.apiKey], webhookSecret: secret, now: Date())
        guard let client = try await store.client(keyHash: APIKey.hash(BenchmarkRelay.apiKey)) else { throw BenchmarkFailure("no client") }
        let started = ContinuousClock.now
        let sample = try await Self.fill(store, client: client, rows: fill)
        let fillSeconds = (ContinuousClock.now - started).seconds
        let claims = try await Self.timeClaims(store, client: client)
        let plans = try await store.explainClaims(now: Date())
        store.close()

        let spawned = ContinuousClock.now
        let relay = try RelayChild(environment: [
            "VEO_RELAY_API_KEYS": BenchmarkRelay.apiKey, "VEO_RELAY_WEBHOOK_SECRET": secret, "VEO_RELAY_DATABASE": location,
            "VEO_RELAY_RATE_LIMIT": "1000000", "VEO_RELAY_SIMULATOR_TIME_SCALE": "10",
            // Callbacks go to a closed loopback port: nothing leaves the machine.
            "VEO_RELAY_CALLBACK_ALLOW_HTTP": "true", "VEO_RELAY_CALLBACK_ALLOW_CIDRS": "127.0.0.0/8",
        ], keepDatabase: true)
        defer { relay.stop() }
        let base = "http://127.0.0.1:\(try await relay.port())"
        let startup = (ContinuousClock.now - spawned).seconds
        let body = ByteBuffer(string: #"{"model":"veo3.1-fast-official","prompt":"scale","callback_url":"http://127.0.0.1:9/hook"}"#)
        let intake = try await LoadGenerator(connections: 32).run(duration: seconds) { _ in
            var request = HTTPClientRequest(url: base + "/v1/videos/generations")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
            return request
        }
        let ids = sample
        let reads = try await LoadGenerator(connections: 32).run(duration: seconds) { index in
            var request = HTTPClientRequest(url: base + "/v1/tasks/\(ids[index % ids.count])")
            request.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
            return request
        }
        guard intake.failed == 0, reads.failed == 0 else { throw BenchmarkFailure("\(intake.failed) intake and \(reads.failed) reads failed") }
        return Measurement(fillSeconds: fillSeconds, claims: claims, startup: startup, intakeP99: intake.latency(0.99),
                           readP99: reads.latency(0.99), rssMiB: Double(try relay.residentKiB()) / 1_024, plans: plans)
    }

    /// `rows` tasks submitted (running, next poll in a day), each with its `task.submitted` event
    /// delivered and logged, through the store's batched writes; returns about a thousand of their ids.
    static func fill(_ store: any RelayStore, client: Client, rows: Int) async throws -> [String] {
        let request = try RequestValidator().validate(.object([
            "model": .string("veo3.1-fast-official"), "prompt": .string("a golden retriever running on the beach, sunset, cinematic"),
            "callback_url": .string("http://127.0.0.1:9/hook"), "metadata": .object(["chat_id": .int(42)])]))
        let batch = 1_000
        // About a thousand ids spread over the whole fill, whatever its size.
        let sampleEvery = max(1, rows / 1_000)
        var sample: [String] = []
        for first in stride(from: 0, to: rows, by: batch) {
            let count = min(batch, rows - first)
            let now = Date()
            let tasks = (0..<count).map { _ in RelayTask(clientID: client.id, request: request, now: now) }
            sample += tasks.indices.filter { (first + $0).isMultiple(of: sampleEvery) }.map { tasks[$0].id }
            _ = try await store.insert(tasks.map { TaskInsertion($0, idempotency: nil) })
            let lease = Lease(owner: "bench/fill/\(first)", expiresAt: now.addingTimeInterval(3_600))
            let claimed = try await store.claimTasks(.submission(), now: now, limit: count, lease: lease)
            _ = try await store.save(try submitted(claimed, lease: lease, now: now, announcing: true))
            let deliveries = try await store.claimDeliveries(now: now, limit: count, lease: lease, excluding: [])
            _ = try await store.recordAttempts(deliveries.map { delivery in
                AttemptRecord(DeliveryAttempt(key: delivery.key, attemptedAt: now, statusCode: 204, latency: 0.004, error: nil,
                                              responseExcerpt: ""), resolution: .delivered, lease: lease)
            })
        }
        return sample
    }

    /// Claimed tasks moved on as the submitter moves them once the upstream accepted them: running,
    /// next poll in a day, with their `task.submitted` event when `announcing`.
    static func submitted(_ claimed: [RelayTask], lease: Lease, now: Date, announcing: Bool) throws -> [TaskTransition] {
        try claimed.map { claimed in
            var task = claimed
            task.beginSubmission()
            task.submitted(UpstreamSubmission(taskID: "upstream-\(task.id)", answer: "{}"), at: now, firstPollAt: now.addingTimeInterval(86_400))
            let event = announcing
                ? NewEvent(type: .taskSubmitted, payload: try JSONCoding.encode(WebhookPayload(type: .taskSubmitted, task: task, at: now)), createdAt: now)
                : nil
            return TaskTransition(task, lease: lease, keepLease: false, event: event)
        }
    }

    /// p99 of 100 claims of each kind, 16 at a time. Submissions from a backlog of 1,600 due tasks, each
    /// claimed batch then moved on (untimed) as the submitter moves it, so that every claim meets the
    /// backlog as the relay's does: a relay never holds more leased queued tasks than its submitter's
    /// concurrency. Polls and deliveries with nothing due (the steady state of a large, quiet database).
    static func timeClaims(_ store: any RelayStore, client: Client) async throws -> (submission: Double, poll: Double, delivery: Double) {
        let request = try RequestValidator().validate(.object(["model": .string("veo3.1-fast-official"), "prompt": .string("claim"),
                                                               "callback_url": .string("http://127.0.0.1:9/hook")]))
        let now = Date()
        for _ in 0..<16 {
            _ = try await store.insert((0..<100).map { _ in TaskInsertion(RelayTask(clientID: client.id, request: request, now: now), idempotency: nil) })
        }
        let lease = Lease(owner: "bench/claims", expiresAt: now.addingTimeInterval(600))
        /// Times `claim` alone; `moveOn` then does, untimed, what the relay does with what it claimed.
        func p99<Claimed>(_ claim: () async throws -> Claimed, moveOn: (Claimed) async throws -> Void = { _ in }) async throws -> Double {
            var times: [Double] = []
            for _ in 0..<100 {
                let started = ContinuousClock.now
                let claimed = try await claim()
                times.append((ContinuousClock.now - started).seconds)
                try await moveOn(claimed)
            }
            return quantile(times.sorted(), 0.99)
        }
        return (try await p99({ try await store.claimTasks(.submission(), now: Date(), limit: 16, lease: lease) },
                              moveOn: { _ = try await store.save(try submitted($0, lease: lease, now: Date(), announcing: false)) }),
                try await p99 { _ = try await store.claimTasks(.poll, now: Date(), limit: 16, lease: lease) },
                try await p99 { _ = try await store.claimDeliveries(now: Date(), limit: 16, lease: lease, excluding: []) })
    }
}
