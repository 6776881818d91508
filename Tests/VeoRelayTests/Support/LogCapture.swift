import Logging
import Synchronization

/// Collects every log line at trace level, metadata included.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    /// A logger writing into this capture.
    var logger: Logger { Logger(label: "veo-relay") { _ in CapturingHandler(capture: self) } }

    /// Returns once a line containing every fragment has been logged (it may have been already).
    func line(containing fragments: String...) async throws {
        try await eventually("a log line with \(fragments)") {
            self.lines.withLock { lines in lines.contains { line in fragments.allSatisfy(line.contains) } }
        }
    }

    func handler(label: String) -> some LogHandler {
        CapturingHandler(capture: self)
    }

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            capture.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 }) \(event.source)")
        }
    }
}
