import Foundation
import Synchronization

/// The built `veo-relay` executable, run as a child process the way an operator runs it.
// @unchecked: `Process` is not Sendable, but after `run()` only its thread-safe pid and signals are used.
final class RelayProcess: @unchecked Sendable {
    /// Next to the test bundle (`.build/<triple>/debug/`), or `VEO_RELAY_BINARY`.
    static let binary: URL = {
        if let path = ProcessInfo.processInfo.environment["VEO_RELAY_BINARY"] { return URL(fileURLWithPath: path) }
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                          URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug")]
        return candidates.map { $0.appendingPathComponent("veo-relay") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0].appendingPathComponent("veo-relay")
    }()

    /// The configuration tests run `serve` with: the test key and secret, callbacks on loopback.
    static let testEnvironment = [
        "VEO_RELAY_API_KEYS": RelayHarness.apiKey, "VEO_RELAY_WEBHOOK_SECRET": RelayHarness.secret,
        "VEO_RELAY_CALLBACK_ALLOW_HTTP": "true", "VEO_RELAY_CALLBACK_ALLOW_CIDRS": "127.0.0.0/8",
    ]

    /// Output beyond this much is a flood: the process is killed and the test fails.
    static let outputLimit = 256 * 1024

    private let process: Process
    private let output = Output()
    private let exit: Task<Int32, Never>

    /// Starts `veo-relay ARGUMENTS` in a fresh directory with only `environment` (and PATH).
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { mine, _ in mine }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.currentDirectoryURL = directory
        let (stdout, stderr) = (Pipe(), Pipe())
        process.standardOutput = stdout
        process.standardError = stderr
        let (exits, continuation) = AsyncStream.makeStream(of: Int32.self)
        process.terminationHandler = { continuation.yield($0.terminationStatus); continuation.finish() }
        self.process = process
        exit = Task { await exits.first { _ in true } ?? -1 }
        for (pipe, isError) in [(stdout, false), (stderr, true)] {
            pipe.fileHandleForReading.readabilityHandler = { [output] handle in
                let chunk = handle.availableData
                let total = output.data.withLock { output in
                    if isError { output.stderr.append(chunk) } else { output.stdout.append(chunk) }
                    return output.stdout.count + output.stderr.count
                }
                if total > Self.outputLimit { process.terminate() }
            }
        }
        // One launch at a time: Foundation's `Process.run()` crashed once (a copy through a bad pointer) while
        // parallel tests launched relays together.
        try Self.launches.withLock { _ in try process.run() }
    }

    private static let launches = Mutex(())

    var standardOutput: String { output.data.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    var standardError: String { output.data.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    var outputSize: Int { output.data.withLock { $0.stdout.count + $0.stderr.count } }

    /// What the process printed so far.
    final class Output: Sendable {
        let data = Mutex((stdout: Data(), stderr: Data()))
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// The exit status; a process still running after `limit` is killed and the test fails.
    func exitStatus(within limit: Duration = .seconds(60)) async throws -> Int32 {
        do {
            return try await within(limit, "veo-relay to exit") { await self.exit.value }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
    }

    /// Returns once standard output or standard error contains `text`.
    func waitForOutput(_ text: String) async throws {
        try await eventually("veo-relay to print '\(text)'", within: .seconds(60)) {
            self.standardOutput.contains(text) || self.standardError.contains(text)
        }
    }

    /// Runs `body`; if it fails, the error carries the end of what the process logged.
    func explaining<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw TestFailure("\(error); veo-relay logged: \(standardError.suffix(3_000))")
        }
    }

    /// The port `serve` reports in its banner, once it is listening.
    func listeningPort() async throws -> Int {
        try await waitForOutput("listening on http://127.0.0.1:")
        let port = standardOutput.firstMatch(of: /listening on http:\/\/127\.0\.0\.1:(\d+)/)?.1
        guard let port = port.flatMap({ Int($0) }) else { throw TestFailure("no port in the banner: \(standardOutput)") }
        return port
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
