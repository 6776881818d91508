import Foundation
import Logging
import Synchronization

/// Writes each log entry as one JSON object on one line (`--log-format json`), for log collectors:
/// `time`, `level`, `label`, `message`, then the entry's metadata (`task_id`, `event_id`,
/// `client_id`, … wherever one applies). Metadata never overrides those four fields.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    /// One write per line, serialised, so concurrent entries never interleave.
    private static let standardError = Mutex(FileHandle.standardError)

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata.merging(metadataProvider?.get() ?? [:]) { _, new in new }
        fields.merge(event.metadata ?? [:]) { _, new in new }
        var object = fields.mapValues(Self.json)
        object["time"] = .string(Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)))
        object["level"] = .string(event.level.rawValue)
        object["label"] = .string(label)
        object["message"] = .string(event.message.description)
        guard let line = try? JSONCoding.encode(JSONValue.object(object)) else { return }
        Self.standardError.withLock { $0.write(line + [UInt8(ascii: "\n")]) }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let value): .string(value.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let values): .object(values.mapValues(json))
        }
    }
}
