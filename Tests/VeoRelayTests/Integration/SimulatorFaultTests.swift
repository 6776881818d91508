import AsyncHTTPClient
import Foundation
import Testing
@testable import VeoRelay
import VeoRelayDevTools

@Suite("Simulator faults as the relay sees them", .stopsWhatItStarts)
struct SimulatorFaultTests {
    @Test func answersDroppedMidBodyOpenTheUpstreamBreaker() async throws {
        let harness = try await RelayHarness.start()
        var policy = UpstreamGate.Policy()
        policy.breaker = CircuitBreaker.Policy(failureThreshold: 3, cooldown: 60, maxCooldown: 60)
        let gate = UpstreamGate(policy: policy, clock: SystemClock())
        let http = HTTPClient.relayClient(connectTimeout: 1)
        let upstream = UpstreamClient(baseURL: harness.simulatorServer.baseURL, http: http, gate: gate)
        let key = Redacted(RelayHarness.upstreamKey)
        let taskID = try await upstream.submit(GenerationRequest(model: .fast, prompt: "a cat"), key: key).taskID
        harness.simulator.reconfigure { $0.faults.dropped = 1 }
        for attempt in 1...3 {
            #expect(!gate.isOpen(), "closed before failure \(attempt)")
            await #expect(throws: UpstreamError.self) { _ = try await upstream.task(id: taskID, key: key) }
        }
        #expect(gate.isOpen(), "three answers lost mid-body are three consecutive failures")
        try await http.shutdown()
        try await harness.stop()
    }

    @Test(arguments: ["dropped", "malformed"])
    func aSpoiledAnswerToASubmissionIsAnUnknownOutcome(_ name: String) async throws {
        var simulator = SimulatorConfiguration(apiKey: RelayHarness.upstreamKey, timeScale: 0.002)
        if name == "dropped" { simulator.faults.dropped = 1 } else { simulator.faults.malformed = 1 }
        let harness = try await RelayHarness.start(simulator: simulator)
        let relay = try await harness.startRelay()
        _ = try await APIClient(baseURL: relay.baseURL).submit(harness.request())
        let delivery = try await harness.receiver.next()[0]
        #expect(delivery.json["data"]?["error"]?["code"] == .string("submission_outcome_unknown"), "\(name)")
        #expect(harness.simulator.totalSubmissions == 1)
        try await harness.stop(relay)
    }
}
