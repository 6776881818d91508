import AsyncHTTPClient
import Foundation
import NIOCore
import VeoRelay
import VeoRelayDevTools

/// Steady intake and delivery for a long while: the relay runs as its own `veo-relay serve` process
/// on SQLite against a simulator here (outside the relay, whose memory holds every job it was given),
/// takes `rate` tasks a second and delivers each one's webhook to a receiver here that verifies it.
/// Its resident memory is read every `sampleEvery`; memory that grows with the work done shows as a
/// rising series between the first sample (after warm-up) and the last.
struct SoakScenario {
    var duration: Duration
    var rate: Int
    var sampleEvery: Duration

    func run() async throws -> [BenchmarkRow] {
        let secret = WebhookSecret.generate()
        let received = Shared(Set<String>())
        let sink = try WebhookSink(secret: secret, captureFile: nil) { delivery in
            if delivery.verified { received.value.withLock { _ = $0.insert(delivery.id) } }
        }
        // Simulated jobs of about a second (a 60–180 s job at 1/100): tasks finish while intake goes on.
        let simulator = UpstreamSimulator(configuration: SimulatorConfiguration(apiKey: "bench-upstream", timeScale: 0.01))
        let support = try await UpstreamAndSink(simulator: simulator, sink: sink)
        let callback = support.callbackURL

        let relay = try RelayChild(environment: [
            "VEO_RELAY_API_KEYS": BenchmarkRelay.apiKey, "VEO_RELAY_WEBHOOK_SECRET": secret.encoded,
            "VEO_RELAY_DATABASE": NSTemporaryDirectory() + "veo-relay-bench-soak-\(UUID().uuidString).sqlite",
            "VEO_RELAY_UPSTREAM_URL": support.upstreamURL, "VEO_RELAY_UPSTREAM_API_KEY": "bench-upstream",
            "VEO_RELAY_RATE_LIMIT": "1000000", "VEO_RELAY_UPSTREAM_RATE": "1000",
            // The adaptive schedule, bounded for jobs of a second: its default first guess is a minute.
            "VEO_RELAY_POLL_FLOOR": "200ms", "VEO_RELAY_POLL_CEILING": "2s",
            "VEO_RELAY_CALLBACK_ALLOW_HTTP": "true", "VEO_RELAY_CALLBACK_ALLOW_CIDRS": "127.0.0.0/8",
        ])
        defer { relay.stop() }
        let base = "http://127.0.0.1:\(try await relay.port())"

        var samples: [(at: Duration, kib: Int)] = []
        var accepted = 0
        let started = ContinuousClock.now
        var nextSample = started + sampleEvery
        var second = 0
        while ContinuousClock.now - started < duration {
            let batch = second
            let intake = try await LoadGenerator(connections: 8).run(count: rate) { index in
                var request = HTTPClientRequest(url: base + "/v1/videos/generations")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"model":"veo3.1-fast-official","prompt":"soak \#(batch)-\#(index)","callback_url":"\#(callback)"}"#))
                return request
            }
            accepted += intake.completed
            second += 1
            if ContinuousClock.now >= nextSample {
                samples.append((ContinuousClock.now - started, try relay.residentKiB()))
                nextSample += sampleEvery
            }
            // Paced: the next second's tasks go in when that second starts.
            try await Task.sleep(until: started + .seconds(second), clock: .continuous)
        }
        let intakeSeconds = (ContinuousClock.now - started).seconds
        try await waitUntil("all \(accepted) webhooks", within: .seconds(300)) { received.value.withLock { $0.count } >= accepted }
        samples.append((ContinuousClock.now - started, try relay.residentKiB()))
        try await support.stop()

        guard let first = samples.first, let last = samples.last else { throw BenchmarkFailure("no memory samples") }
        func mib(_ kib: Int) -> String { format(Double(kib) / 1_024, digits: 1) + " MiB" }
        func at(_ sample: (at: Duration, kib: Int)) -> String { "\(mib(sample.kib)) at \(format(sample.at.seconds, digits: 0)) s" }
        let peak = samples.map(\.kib).max() ?? 0
        return [BenchmarkRow(
            scenario: "soak",
            measure: "relay RSS over \(format(intakeSeconds, digits: 0)) s of steady intake (\(accepted) tasks, \(format(Double(accepted) / intakeSeconds, digits: 0))/s) and delivery (all \(accepted) webhooks verified); \(samples.count) samples",
            relay: "\(at(first)) → \(at(last)), peak \(mib(peak)); every sample, MiB: "
                + samples.map { format(Double($0.kib) / 1_024, digits: 1) }.joined(separator: ", "),
            baseline: "first sample", ratio: format(Double(last.kib) / Double(first.kib)), target: "flat; ≤ 150 MB")]
    }
}
