import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The built `veo-relay` executable, run as a child process the way an operator runs it. Started with
/// `posix_spawn` rather than Foundation's `Process`, whose `run()` on Linux crashes now and then
/// reading past a buffer while it lists `/proc/self/fd` (swift-corelibs-foundation #5472, not in
/// this toolchain).
final class RelayProcess: Sendable {
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

    private let pid: pid_t
    private let output = Output()
    private let exit: Task<Int32, Never>
    private let running = Running()

    /// Starts `veo-relay ARGUMENTS` in a fresh directory with only `environment` (and PATH).
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let variables = environment.merging(["PATH": "/usr/bin:/bin"]) { mine, _ in mine }.map { "\($0)=\($1)" }
        // posix_spawn has no working directory of its own here: coreutils' env changes into it and execs the
        // relay in its place (the same process).
        let argv = ["/usr/bin/env", "-C", directory.path, "--", Self.binary.path] + arguments
        var (stdout, stderr): ([Int32], [Int32]) = ([-1, -1], [-1, -1])
        // One launch at a time, so that no relay inherits another's pipes before they are marked close-on-exec.
        Self.launches.lock()
        defer { Self.launches.unlock() }
        guard pipe(&stdout) == 0, pipe(&stderr) == 0 else { throw TestFailure("pipe: errno \(errno)") }
        for descriptor in stdout + stderr { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderr[1], 2)
        // Signals as a fresh process has them, whatever the test runner ignores or blocks.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var child = pid_t()
        let spawned = Self.withCStrings(argv) { argv in
            Self.withCStrings(variables) { envp in posix_spawn(&child, "/usr/bin/env", &actions, &attributes, argv, envp) }
        }
        close(stdout[1])
        close(stderr[1])
        guard spawned == 0 else {
            close(stdout[0])
            close(stderr[0])
            throw TestFailure("could not start veo-relay: posix_spawn error \(spawned)")
        }
        let pid = child
        self.pid = pid
        // The exit is reported once both pipes are read to their end: a test that reads the output after
        // the exit must see all of it, however far behind the readers are on a loaded machine.
        let drained = DispatchGroup()
        for (descriptor, isError) in [(stdout[0], false), (stderr[0], true)] {
            drained.enter()
            Thread.detachNewThread { [output] in
                defer { drained.leave() }
                var chunk = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let count = read(descriptor, &chunk, chunk.count)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else { break }
                    let total = output.data.withLock { output in
                        if isError { output.stderr.append(contentsOf: chunk[0..<count]) } else { output.stdout.append(contentsOf: chunk[0..<count]) }
                        return output.stdout.count + output.stderr.count
                    }
                    if total > Self.outputLimit { kill(pid, SIGTERM) }
                }
                close(descriptor)
            }
        }
        let (exits, continuation) = AsyncStream.makeStream(of: Int32.self)
        Thread.detachNewThread { [running] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            running.flag.withLock { $0 = false }
            drained.wait()
            // As Foundation's terminationStatus: the exit code, or the signal that ended it.
            continuation.yield(status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f)
            continuation.finish()
        }
        let exit = Task { await exits.first { _ in true } ?? -1 }
        self.exit = exit
        ServerScope.enrol { [running] in
            if running.flag.withLock({ $0 }) { kill(pid, SIGKILL) }
            _ = await exit.value
        }
    }

    private static let launches = NSLock()

    /// `body` with `strings` as a NULL-terminated array of C strings.
    private static func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }

    var standardOutput: String { output.data.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    var standardError: String { output.data.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    var outputSize: Int { output.data.withLock { $0.stdout.count + $0.stderr.count } }

    /// Whether the process has not been reaped yet.
    final class Running: Sendable {
        let flag = Mutex(true)
    }

    /// What the process printed so far.
    final class Output: Sendable {
        let data = Mutex((stdout: Data(), stderr: Data()))
    }

    func signal(_ number: Int32) {
        kill(pid, number)
    }

    /// The exit status; a process still running after `limit` is killed and the test fails.
    func exitStatus(within limit: Duration = .seconds(60)) async throws -> Int32 {
        do {
            return try await within(limit, "veo-relay to exit") { await self.exit.value }
        } catch {
            kill(pid, SIGKILL)
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
        if running.flag.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}
