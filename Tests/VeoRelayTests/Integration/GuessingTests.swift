import Foundation
import Testing
@testable import VeoRelay

/// Guessing credentials is slowed and shown: past a few failures from one address, wrong API keys and
/// console tokens are answered 429 with `Retry-After`, and the lock-out is logged once, without them.
/// The test's clock stands still, so no failure is forgiven while it runs, however slow the machine.
@Suite("Guessing credentials", .stopsWhatItStarts)
struct GuessingTests {
    @Test func wrongAPIKeysFromOneAddressAreAnswered429AndAValidKeyStillGetsIn() async throws {
        let harness = try await RelayHarness.start(clock: ManualClock.startingNow(), tune: { $0.failedAttempts.burst = 3 })
        let capture = LogCapture()
        let relay = try await harness.startRelay(logger: capture.logger)
        var answers: [Int] = []
        for guess in 0..<5 { answers.append(try await APIClient(baseURL: relay.baseURL, key: "vr_guess\(guess)").get("/v1/tasks/task_x").status) }
        #expect(answers == [401, 401, 401, 429, 429], "\(answers)")
        let refused = try await APIClient(baseURL: relay.baseURL, key: "vr_guess5").send(.GET, "/v1/tasks/task_x", body: nil)
        #expect(refused.json["error"]?["type"] == .string("too_many_failed_attempts") && Int(refused.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(try await APIClient(baseURL: relay.baseURL).get("/v1/tasks/task_x").status == 404, "a valid key from that address still gets in")
        try await capture.line(containing: "repeated failed authentications")
        #expect(capture.text.components(separatedBy: "repeated failed authentications").count == 2, "logged once")
        #expect(!capture.text.contains("vr_guess"), "no guessed key in the log")
        try await harness.stop(relay)
    }

    @Test func wrongConsoleTokensLockTheSignInForAWhile() async throws {
        let harness = try await RelayHarness.start(clock: ManualClock.startingNow(), tune: { $0.failedAttempts.burst = 3 })
        let relay = try await harness.startRelay { $0.consoleToken = ConsoleTests.token }
        let browser = ConsoleTests.Browser(base: relay.baseURL)
        var answers: [Int] = []
        for guess in 0..<4 { answers.append(try await browser.signIn("wrong-\(guess)").status) }
        #expect(answers == [303, 303, 303, 429], "\(answers)")
        #expect(try await browser.signIn().status == 429, "locked out, the right token is not even checked")
        try await harness.stop(relay)
    }
}
