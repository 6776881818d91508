import Foundation
import Synchronization
import Testing
@testable import VeoRelay

/// The newcomer's default: `serve` with no upstream key runs the built-in simulator in the relay's
/// own process, so it dies with the relay. Its jobs must outlive it, as real upstream jobs outlive a
/// relay, or `kill -9` during the walk-through shows tasks failing that the relay promises to finish.
@Suite("Built-in simulator", .stopsWhatItStarts)
struct BuiltInSimulatorTests {
    @Test func tasksInFlightWhenTheRelayIsKilledSucceedAfterTheRestart() async throws {
        let receiver = WebhookReceiver()
        let receiverServer = try await receiver.start()
        let database = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-sim-\(UUID().uuidString).sqlite").path
        // Jobs of 6–18 s (the default time scale): a kill right after their submission lands mid-job.
        let arguments = ["serve", "--port", "0", "--database", database, "--simulator-time-scale", "0.1"]
        let first = try RelayProcess(arguments, environment: RelayProcess.testEnvironment)
        let api = APIClient(baseURL: "http://127.0.0.1:\(try await first.listeningPort())")
        var ids: [String] = []
        for n in 0..<5 {
            ids.append(try await api.submit(RelayHarness.generation(callbackURL: receiverServer.baseURL + "/hook", prompt: "in flight \(n)",
                extra: ["callback_events": .array([.string("task.submitted"), .string("task.succeeded"), .string("task.failed")])])))
        }
        let submitted = try await receiver.next(5)
        #expect(Set(submitted.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == Set(ids))
        #expect(submitted.allSatisfy { $0.json["type"] == .string("task.submitted") }, "every job was running upstream at the kill")
        first.signal(SIGKILL)
        _ = try await first.exitStatus()

        let second = try RelayProcess(arguments, environment: RelayProcess.testEnvironment)
        _ = try await second.listeningPort()
        // A `task.submitted` whose delivery the kill left unrecorded comes again, under its first webhook-id.
        let ended = Mutex(0)
        let after = try await receiver.next(until: { delivery in
            delivery.type != "task.submitted" && ended.withLock { count in
                count += 1
                return count == 5
            }
        }, within: .seconds(180))
        let finished = after.filter { $0.type != "task.submitted" }
        #expect(Set(after.filter { $0.type == "task.submitted" }.map(\.id)).isSubset(of: Set(submitted.map(\.id))), "only sent again")
        #expect(Set(finished.compactMap { $0.json["data"]?["task_id"]?.stringValue }) == Set(ids))
        #expect(finished.map(\.type) == Array(repeating: "task.succeeded", count: 5), "\(finished.map { $0.json["data"]?["error"] ?? .null })")
        second.signal(SIGTERM)
        #expect(try await second.exitStatus() == 0)
        try await receiverServer.stop()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
    }
}
