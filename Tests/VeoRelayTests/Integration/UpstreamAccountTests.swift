import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// The upstream account refuses work (its balance ran out): tasks wait in the queue instead of failing,
/// the broke account is asked only by one probe per interval, and the queue flows once it is topped up.
@Suite("Upstream account", .stopsWhatItStarts)
struct UpstreamAccountTests {
    @Test func aBrokeAccountHoldsTheQueueAndATopUpLetsItFlow() async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        simulator.accountRefusal = .balance
        let clock = ShiftedClock()
        let harness = try await RelayHarness.start(simulator: simulator, clock: clock) { configuration in
            configuration.engine.upstream.rate = 500
            configuration.engine.upstream.burst = 500
        }
        let capture = LogCapture()
        let relay = try await harness.startRelay(logger: capture.logger)
        let api = APIClient(baseURL: relay.baseURL)
        let windowStart = clock.now()

        var ids: [String] = []
        for n in 0..<100 { ids.append(try await api.submit(harness.request(prompt: "while broke \(n)"))) }
        try await capture.line(containing: "the upstream account refuses work")
        // The first probe comes 5 s (on the relay's clock) after the refusal: bring it on.
        clock.advance(by: AccountProbes.first)
        try await capture.line(containing: "probing the upstream account")
        #expect(harness.receiver.all.isEmpty, "no task ended while the account was broke")
        #expect(harness.simulator.totalSubmissions == 0)
        let queued = try await api.get("/v1/tasks/\(ids[99])")
        #expect(queued.json["data"]?["status"] == .string("pending"), "\(queued.json)")

        harness.simulator.reconfigure { $0.accountRefusal = nil }
        let window = clock.now().timeIntervalSince(windowStart)
        let probes = capture.text.components(separatedBy: "probing the upstream account").count - 1
        // Probes come 5, 10, 20… s apart on the relay's clock: however long the window took, no more than this.
        #expect(probes >= 1 && probes <= 1 + Int(window / AccountProbes.first), "\(probes) probes in \(window) s")
        // Besides the probes, only what was already on its way when the first refusal came back.
        let refused = harness.simulator.accountRefusals
        #expect(refused - probes <= harness.configuration.engine.submitters, "\(refused) refusals, \(probes) of them probes")
        // The second probe comes 10 s after the first. (A jump of more than the owner-silence limit would
        // judge this very relay gone, and its submissions in flight outcome-unknown.)
        clock.advance(by: 2 * AccountProbes.first)
        let finished = try await harness.receiver.next(100, within: .seconds(120))
        #expect(Set(finished.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == Set(ids))
        #expect(finished.allSatisfy { $0.type == "task.succeeded" }, "\(finished.compactMap { $0.json["data"]?["error"] })")
        #expect(harness.simulator.totalSubmissions == 100 && harness.simulator.submissionsByPrompt.values.allSatisfy { $0 == 1 }, "each paid once")
        try await capture.line(containing: "the upstream account takes work again")
        try await harness.stop(relay)
    }

    /// What a refusal is about: the account (the task waits) or the request (the task fails).
    @Test(arguments: [(401, "Invalid API key", true), (402, "anything", true), (403, "Insufficient balance", true),
                      (403, "Permission denied for this key", true), (403, "The prompt was blocked by the safety filter", false),
                      (400, "Invalid key in request body", false)])
    func refusalsAreSortedByWhatTheyAreAbout(status: Int, message: String, account: Bool) {
        #expect(UpstreamClient.refusesAccount(status: status, message: message) == account)
    }
}
