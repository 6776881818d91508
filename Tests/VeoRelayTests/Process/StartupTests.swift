import Foundation
import Hummingbird
import Testing
@testable import VeoRelay

/// Every start-up failure ends `veo-relay serve` with a non-zero status and one line naming the
/// cause, without a banner and without a flood of log lines (a busy port once made it spin at
/// 78,000 log lines a second).
@Suite("Start-up failures and signals of the real process", .stopsWhatItStarts)
struct StartupTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        var cause: String
        var testDescription: String { name }
    }

    static let invalidConfigurations: [Case] = [
        Case(name: "rate limit 0", arguments: ["--rate-limit", "0"], cause: "--rate-limit"),
        Case(name: "port out of range", arguments: ["--port", "70000"], cause: "--port"),
        Case(name: "lease shorter than a request", arguments: ["--lease-duration", "10s"], cause: "--lease-duration"),
        Case(name: "infinite poll floor", arguments: ["--poll-floor", "inf"], cause: "not a duration"),
        Case(name: "NaN in the retry schedule", arguments: ["--retry-schedule", "0,5s,nan"], cause: "not a duration"),
        Case(name: "no upstream allowance", arguments: ["--upstream-rate", "0"], cause: "--upstream-rate"),
        Case(name: "no delivery slots", arguments: ["--delivery-concurrency", "0"], cause: "--delivery-concurrency"),
        Case(name: "upstream URL without a host", arguments: ["--upstream-url", "xcompute", "--upstream-api-key", "k"], cause: "--upstream-url"),
    ]

    @Test(arguments: invalidConfigurations)
    func anInvalidConfigurationIsRefusedInOneLine(_ failure: Case) async throws {
        try await expectStartFails(failure.arguments, naming: failure.cause)
    }

    @Test func aBusyPortFailsTheStartInsteadOfSpinning() async throws {
        let occupant = try await RunningServer.start(router: Router())
        try await expectStartFails(["--port", "\(occupant.port)"], naming: "cannot listen on 127.0.0.1:\(occupant.port)")
        try await occupant.stop()
    }

    @Test func anUnwritableDatabasePathFailsTheStart() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-not-a-directory-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try await expectStartFails(["--database", file.path + "/relay.sqlite"], naming: "cannot open the database")
    }

    @Test func anUnreachablePostgreSQLFailsTheStart() async throws {
        // Nothing listens on port 1 of loopback: the connection is refused at once.
        try await expectStartFails(["--database", "postgres://relay:secret@127.0.0.1:1/relay"],
                                   naming: "cannot open the database postgres://relay:redacted@127.0.0.1:1/relay")
    }

    @Test(.enabled(if: TestPostgres.adminURL != nil, "needs the test PostgreSQL"))
    func wrongPostgreSQLCredentialsFailTheStart() async throws {
        let admin = try #require(TestPostgres.adminURL)
        var url = try #require(URLComponents(string: admin))
        let role = "nobody_\(UUID().uuidString.prefix(8).lowercased())"
        url.user = role
        let database = try #require(url.string)
        try await expectStartFails(["--database", database], naming: "role \"\(role)\" does not exist")
    }

    @Test func anUnreadableKeyFileFailsTheStart() async throws {
        try await expectStartFails(["--upstream-api-key-file", "/nonexistent/veo-relay/key"],
                                   naming: "cannot read the upstream key file /nonexistent/veo-relay/key")
    }

    @Test(arguments: [1, 2])
    func signalsStopTheRelayWithADeliveryStuckInFlight(signals: Int) async throws {
        let stuck = Latch()
        let receiver = WebhookReceiver { _ in
            await stuck.wait()
            return .init(status: .noContent)
        }
        let receiverServer = try await receiver.start()
        // One signal: the drain is cut after 1 s. Two: the drain must outlast the moment the test takes to send the second.
        let relay = try RelayProcess(["serve", "--port", "0", "--drain-timeout", signals == 1 ? "1s" : "120s"], environment: RelayProcess.testEnvironment)
        let port = try await relay.listeningPort()
        let callback = receiverServer.baseURL + "/hook"
        _ = try await APIClient(baseURL: "http://127.0.0.1:\(port)").submit(RelayHarness.generation(
            callbackURL: callback, prompt: "a cat", extra: ["callback_events": .array([.string("task.submitted")])]))
        _ = try await receiver.next() // the webhook is in flight and its receiver never answers

        relay.signal(SIGTERM)
        try await relay.waitForOutput("a second signal stops at once")
        if signals == 2 { relay.signal(SIGTERM) }
        let status = try await relay.exitStatus()
        if signals == 2 {
            #expect(status == 128 + SIGTERM, "a second signal stops at once")
            #expect(relay.standardError.contains("second signal"))
        } else {
            #expect(status == 0, "the drain is cut short after --drain-timeout and the relay exits: \(relay.standardError.suffix(500))")
        }
        stuck.open()
        try await receiverServer.stop()
    }

    /// Starts `serve` (on a free port unless the arguments name one) and checks how it ended.
    private func expectStartFails(_ arguments: [String], naming cause: String) async throws {
        let defaults = arguments.contains("--port") ? [] : ["--port", "0"]
        let relay = try RelayProcess(["serve"] + defaults + arguments)
        let status = try await relay.exitStatus()
        let lines = relay.standardError.split(separator: "\n")
        #expect(status != 0, "a failed start exits non-zero")
        #expect(lines.count == 1, "one line, not \(lines.count): \(relay.standardError.prefix(2_000))")
        #expect(lines.last?.contains(cause) == true, "the line names the cause '\(cause)': \(lines.last ?? "")")
        #expect(!relay.standardOutput.contains("listening"), "no banner before the port is bound")
        #expect(relay.outputSize < 4_096, "bounded output, not \(relay.outputSize) bytes")
    }
}
