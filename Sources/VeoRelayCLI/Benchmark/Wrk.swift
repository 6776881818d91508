import Foundation

/// `wrk` (Debian's C HTTP load generator) posting one request over and over, as the hardest honest
/// baseline for what a Hummingbird handler in this process can take. Runs as a child process, waited
/// for without blocking a thread of the relay it measures.
struct Wrk {
    let path: String
    var connections: Int
    var threads = 2
    var seconds: Int

    /// The `wrk` on the PATH, if there is one.
    static func find(connections: Int, seconds: Int) -> Wrk? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/wrk" }.first { FileManager.default.isExecutableFile(atPath: $0) }
            .map { Wrk(path: $0, connections: connections, seconds: seconds) }
    }

    struct Result {
        var rate: Double
        /// Answers other than 2xx/3xx, and socket errors: both must be 0 for the rate to count.
        var failed: Int
        /// CPU this process (the server side: relay or handler, and any receiver in it) spent per request
        /// while wrk ran, in microseconds: where a rate is bound by the machine, this says what it costs.
        var cpuMicrosecondsPerRequest: Double
    }

    func post(_ url: String, body: Data, headers: [(String, String)]) async throws -> Result {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("veo-relay-wrk-\(UUID().uuidString).lua")
        defer { try? FileManager.default.removeItem(at: script) }
        // Long brackets quote the body as it is (JSON holds no `]==]`).
        let lua = ["wrk.method = \"POST\"", "wrk.body = [==[\(String(decoding: body, as: UTF8.self))]==]"]
            + headers.map { "wrk.headers[\"\($0.0)\"] = [==[\($0.1)]==]" }
        try lua.joined(separator: "\n").write(to: script, atomically: true, encoding: .utf8)
        let cpuBefore = Self.processCPUSeconds()
        let output = try await run(["-t\(threads)", "-c\(connections)", "-d\(seconds)s", "-s", script.path, url])
        let cpu = Self.processCPUSeconds() - cpuBefore
        guard let rate = Self.number(after: "Requests/sec:", in: output),
              let requests = output.firstMatch(of: /(\d+) requests in/).flatMap({ Double($0.1) }), requests > 0
        else { throw BenchmarkFailure("wrk said: \(output)") }
        let non2xx = Self.number(after: "Non-2xx or 3xx responses:", in: output) ?? 0
        let errors = output.range(of: #"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"#, options: .regularExpression)
            .map { output[$0].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +) } ?? 0
        return Result(rate: rate, failed: Int(non2xx) + errors, cpuMicrosecondsPerRequest: cpu / requests * 1_000_000)
    }

    /// User and system CPU time of this process so far, in seconds.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
    }

    private func run(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { _ in
                continuation.resume(returning: String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }

    private static func number(after label: String, in output: String) -> Double? {
        guard let line = output.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
        return Double(line.replacingOccurrences(of: label, with: "").trimmingCharacters(in: .whitespaces))
    }
}
