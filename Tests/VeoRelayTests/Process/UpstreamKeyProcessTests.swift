import Foundation
import Hummingbird
import Testing
@testable import VeoRelay
import VeoRelayDevTools

/// The upstream account refuses work while 100 tasks arrive, against the relay process as an operator
/// runs it: a balance run out (402) and topped up, or a key revoked (401) and replaced with
/// `veo-relay upstream keys add` while the relay runs.
@Suite(.stopsWhatItStarts) struct UpstreamKeyProcessTests {
    static let configuredKey = "sk-configured-0001"
    static let replacementKey = "sk-replacement-0002"

    @Test(arguments: [SimulatorConfiguration.AccountRefusal.balance, .revokedKey])
    func aRefusingAccountHoldsAHundredTasksUntilItIsPutRight(refusal: SimulatorConfiguration.AccountRefusal) async throws {
        var configuration = SimulatorConfiguration(timeScale: 0.002)
        configuration.refusingKeys = [Self.configuredKey: refusal]
        let simulator = UpstreamSimulator(configuration: configuration)
        let router = Router()
        router.middlewares.add(ErrorEnvelopeMiddleware(logger: TestLog.logger))
        simulator.addRoutes(to: router)
        let simulatorServer = try await RunningServer.start(router: router)
        let receiver = WebhookReceiver()
        let receiverServer = try await receiver.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("relay.sqlite").path
        let relay = try RelayProcess(["serve", "--port", "0", "--database", database, "--upstream-rate", "200"],
                                     environment: RelayProcess.testEnvironment.merging([
                                         "VEO_RELAY_UPSTREAM_URL": simulatorServer.baseURL, "VEO_RELAY_UPSTREAM_API_KEY": Self.configuredKey,
                                         "VEO_RELAY_POLL_FIXED_INTERVAL": "100ms", "VEO_RELAY_RATE_LIMIT": "1000"]) { $1 })
        let api = APIClient(baseURL: "http://127.0.0.1:\(try await relay.listeningPort())")
        let windowStart = Date()

        var ids: [String] = []
        for n in 0..<100 { ids.append(try await api.submit(RelayHarness.generation(callbackURL: receiverServer.baseURL + "/hook", prompt: "held \(n)"))) }
        try await relay.waitForOutput("the upstream account refuses work")
        #expect(simulator.submissionsByKey.isEmpty, "nothing paid while the account refuses")
        let held = try RelayProcess(["upstream", "status", "--database", database])
        #expect(try await held.exitStatus() == 3, "held: \(held.standardOutput)")
        #expect(held.standardOutput.contains("HELD") && !held.standardOutput.contains(Self.configuredKey), "\(held.standardOutput)")

        switch refusal {
        case .balance:
            simulator.reconfigure { $0.refusingKeys = [:] } // topped up: the next probe finds out
        case .revokedKey:
            let secretFile = directory.appendingPathComponent("replacement").path
            try Self.replacementKey.write(toFile: secretFile, atomically: true, encoding: .utf8)
            let add = try RelayProcess(["upstream", "keys", "add", "replacement", "--secret-file", secretFile, "--database", database])
            #expect(try await add.exitStatus() == 0, "\(add.standardError)")
            #expect(add.standardOutput.contains("…0002") && !add.standardOutput.contains(Self.replacementKey), "\(add.standardOutput)")
        }

        let finished = try await relay.explaining { try await receiver.next(100, within: .seconds(180)) }
        let window = Date().timeIntervalSince(windowStart)
        #expect(Set(finished.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == Set(ids))
        #expect(finished.allSatisfy { $0.type == "task.succeeded" }, "0 failed")
        #expect(simulator.totalSubmissions == 100 && simulator.maxSubmissionsOfOneRequest == 1, "each paid once")
        let paidBy = refusal == .balance ? Self.configuredKey : Self.replacementKey
        #expect(simulator.submissionsByKey == [paidBy: 100])
        // Probes come 5, 10, 20… s apart: besides what was on its way when the first refusal came back
        // (at most one submission per submitter), no more than one refusal per interval.
        var engine = EngineConfiguration()
        engine.upstream.rate = 200
        let submitters = engine.submitters
        let refused = simulator.accountRefusals
        #expect(refused <= submitters + 1 + Int(window / AccountProbes.first), "\(refused) refusals in \(window) s")
        relay.signal(SIGTERM)
        #expect(try await relay.exitStatus() == 0)
        try await simulatorServer.stop()
        try await receiverServer.stop()
    }
}
