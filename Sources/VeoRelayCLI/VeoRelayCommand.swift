import ArgumentParser
import Foundation
import Logging
import Synchronization
import VeoRelay

@main
struct VeoRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veo-relay",
        abstract: "A webhook relay for the Veo 3.1 video API: submit, poll, and get a signed callback.",
        subcommands: [Serve.self, Simulate.self, Sink.self, Submit.self, Cancel.self, Resubmit.self, Redeliver.self, Deliveries.self, Pause.self, Resume.self, Usage.self, Upstream.self, Keys.self, Endpoints.self, Secret.self, Benchmark.self, Probe.self])
}

/// Reads `VEO_RELAY_*` variables: a flag always wins over its variable.
enum Env {
    static func string(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    static func flag(_ name: String) -> Bool {
        ["1", "true", "yes", "on"].contains(string(name)?.lowercased() ?? "")
    }

    static func list(_ name: String) -> [String] {
        string(name).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } } ?? []
    }

    /// A duration from its flag, else its variable (`250ms`, `5s`, `2h`, …).
    static func duration(_ flag: String?, _ name: String) throws -> TimeInterval? {
        try (flag ?? string(name)).map { try DurationText.seconds($0) }
    }

    static func value<T: LosslessStringConvertible>(_ name: String, as type: T.Type = T.self) throws -> T? {
        guard let text = string(name) else { return nil }
        guard let value = T(text) else { throw ValidationError("\(name)=\(text) is not a valid \(T.self)") }
        return value
    }
}

/// Logging to standard error at the level asked for (`--log-level` or `LOG_LEVEL`).
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. [env: LOG_LEVEL] (default: info)")
    var logLevel: String?

    @Option(help: "Log format: text, or json for one JSON object per line. [env: VEO_RELAY_LOG_FORMAT] (default: text)")
    var logFormat: String?

    func bootstrap(label: String) throws -> Logger {
        let text = logLevel ?? Env.string("LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: text) else { throw ValidationError("unknown log level '\(text)'") }
        let format = logFormat ?? Env.string("VEO_RELAY_LOG_FORMAT") ?? "text"
        let makeHandler: @Sendable (String) -> any LogHandler
        switch format {
        case "text": makeHandler = StreamLogHandler.standardError(label:)
        case "json": makeHandler = JSONLogHandler.init(label:)
        default: throw ValidationError("unknown log format '\(format)' (text or json)")
        }
        Console.jsonLogs.store(format == "json", ordering: .relaxed)
        LoggingSystem.bootstrap { label in
            var handler = makeHandler(label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

/// Unbuffered standard output, so lines show up at once even when piped to a file or `tee`.
enum Console {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Set once logging is bootstrapped with `--log-format json`: standard error then carries
    /// JSON lines only, so these messages become log entries too.
    static let jsonLogs = Atomic(false)

    static func error(_ text: String, level: Logger.Level = .error) {
        if jsonLogs.load(ordering: .relaxed) {
            Logger(label: "veo-relay").log(level: level, "\(text)")
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}
