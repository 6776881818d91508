import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import VeoRelay

/// Many open event streams on one relay: the relay runs as its own `veo-relay serve` process (so its
/// resident memory is its own), with `streams` stream-only tasks held open by long simulated jobs.
/// One stream per task is opened, held with a heartbeat every second, then closed; the relay's RSS is
/// read from /proc before, while open and after, and its `veo_relay_open_streams` gauge confirms the count.
struct StreamsScenario {
    var streams: Int
    var hold: Duration
    var rounds: Int

    func run() async throws -> [BenchmarkRow] {
        let relay = try RelayChild(environment: [
            "VEO_RELAY_API_KEYS": BenchmarkRelay.apiKey, "VEO_RELAY_WEBHOOK_SECRET": WebhookSecret.generate().encoded,
            "VEO_RELAY_DATABASE": NSTemporaryDirectory() + "veo-relay-bench-streams-\(UUID().uuidString).sqlite",
            "VEO_RELAY_RATE_LIMIT": "1000000", "VEO_RELAY_UPSTREAM_RATE": "1000", "VEO_RELAY_SIMULATOR_TIME_SCALE": "10",
            "VEO_RELAY_MAX_STREAMS_PER_CLIENT": "\(streams * 2)", "VEO_RELAY_STREAM_HEARTBEAT": "1s",
        ])
        defer { relay.stop() }
        let base = "http://127.0.0.1:\(try await relay.port())"
        var submit = HTTPClientRequest(url: base + "/v1/videos/generations")
        submit.method = .POST
        submit.headers.add(name: "Authorization", value: "Bearer \(BenchmarkRelay.apiKey)")
        var watchURLs: [String] = []
        for index in 0..<streams {
            submit.body = .bytes(ByteBuffer(string: #"{"model":"veo3.1-quality-official","prompt":"stream \#(index)","delivery":"stream"}"#))
            let answer = try await HTTPClient.shared.execute(submit, timeout: .seconds(30))
            let body = try await answer.body.collect(upTo: 1 << 16)
            guard let url = (try? JSONValue.parse(Data(buffer: body)))?["data"]?.arrayFirst?["watch_url"]?.stringValue else {
                throw BenchmarkFailure("intake answered \(answer.status)")
            }
            watchURLs.append(url)
        }
        let before = try relay.residentKiB()

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: streams + 16)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        // Several rounds: memory that closed streams left behind would show as growth round after round.
        var rounds: [Round] = []
        for _ in 0..<self.rounds { rounds.append(try await round(watchURLs, client: client, base: base, relay: relay)) }
        try await client.shutdown()

        func mib(_ kib: Int) -> String { format(Double(kib) / 1_024, digits: 1) + " MiB" }
        let perStream = Double(max(0, rounds[0].held - before)) / Double(streams)
        return [
            BenchmarkRow(scenario: "streams", measure: "relay RSS: \(streams) tasks, no stream → \(streams) open for \(hold) → all closed; \(self.rounds) rounds",
                         relay: "\(mib(before)) → " + rounds.map { "\(mib($0.held)) → \(mib($0.closed))" }.joined(separator: "; "),
                         baseline: "\(format(perStream, digits: 1)) KiB per open stream", target: "bounded"),
            BenchmarkRow(scenario: "streams", measure: "while held: events received / heartbeats received (1 s heartbeat), per round",
                         relay: rounds.map { "\($0.events) / \($0.heartbeats)" }.joined(separator: "; "), baseline: "—"),
        ]
    }

    struct Round {
        var held: Int
        var closed: Int
        var events: Int
        var heartbeats: Int
    }

    /// Opens one stream per URL, holds them for `hold`, closes them; the relay's RSS while held and once closed.
    func round(_ watchURLs: [String], client: HTTPClient, base: String, relay: RelayChild) async throws -> Round {
        let counts = Shared((opened: 0, events: 0, heartbeats: 0))
        let readers = watchURLs.map { url in
            Task {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "Accept", value: "text/event-stream")
                let response = try await client.execute(request, timeout: .minutes(30))
                guard response.status == .ok else { throw BenchmarkFailure("a stream answered \(response.status)") }
                counts.value.withLock { $0.opened += 1 }
                var parser = ServerSentEventParser()
                for try await chunk in response.body {
                    for message in parser.feed(String(buffer: chunk)) {
                        counts.value.withLock { message.event != nil ? ($0.events += 1) : (message.comment == "heartbeat" ? ($0.heartbeats += 1) : ()) }
                    }
                }
            }
        }
        try await waitUntil("every stream to open") { counts.value.withLock { $0.opened } == watchURLs.count }
        try await waitUntil("the relay to count them") { try await openStreams(base) == watchURLs.count }
        try await Task.sleep(for: hold)
        let held = try relay.residentKiB()
        let received = counts.value.withLock { $0 }
        for reader in readers { reader.cancel() }
        try await waitUntil("the relay to close them") { try await openStreams(base) == 0 }
        return Round(held: held, closed: try relay.residentKiB(), events: received.events, heartbeats: received.heartbeats)
    }

    func openStreams(_ base: String) async throws -> Int {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 22))
        let line = text.split(separator: "\n").first { $0.hasPrefix("veo_relay_open_streams ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? -1
    }
}
