import Foundation
import Logging
import NIOFileSystem

/// `--store-videos` and its settings: where the relay keeps its copies of finished videos, and how
/// it fetches them.
public struct VideoStoragePolicy: Sendable {
    /// The directory copies go to; nil leaves videos with the upstream (its URLs expire after a day).
    /// Several instances on one database need it on a volume they all mount.
    public var directory: String?
    /// A video larger than this is refused while it streams in.
    public var maxBytes: Int64 = 512 * 1_024 * 1_024
    /// How long after the upstream finished a task its result may wait for the copies: past this,
    /// the result is announced with the upstream's URLs and a `store_error`.
    public var timeout: TimeInterval = 600
    /// How long copies are kept; the route then answers 410.
    public var retention: TimeInterval = 30 * 86_400
    /// Apply the callback address rules to the video host (`--check-video-urls`).
    public var checkAddresses = false
    public var connectTimeout: TimeInterval = 10
    /// The longest one download may take, start to end.
    public var downloadTimeout: TimeInterval = 300
    /// Between attempts after a 5xx, a timeout or a lost connection.
    public var backoff = Backoff(base: 2, maximum: 60)

    public init() {}
}

/// The directory of stored videos: `<task id>.<index>.mp4`, written as `.partial-*` first.
public struct VideoDirectory: Sendable {
    public let path: String
    static let partialPrefix = ".partial-"

    public init(path: String) {
        self.path = path
    }

    /// Where a task's video lives, relative to the directory (as the file server names it).
    static func name(taskID: String, index: Int) -> String { "\(taskID).\(index).mp4" }

    func file(taskID: String, index: Int) -> FilePath { FilePath(path).appending(Self.name(taskID: taskID, index: index)) }

    func partialFile() -> FilePath { FilePath(path).appending(Self.partialPrefix + UUID().uuidString) }

    /// Creates the directory if needed, proves it writable with a probe file, and removes the partial
    /// downloads a crash left behind. Fails the start when the directory cannot be used.
    public func prepare(logger: Logger) throws {
        let files = FileManager.default
        let probe = (path as NSString).appendingPathComponent(Self.partialPrefix + "probe")
        do {
            try files.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Data("probe".utf8).write(to: URL(fileURLWithPath: probe))
            try files.removeItem(atPath: probe)
        } catch {
            throw ConfigurationError("--store-videos: the directory '\(path)' is not writable (\(error.localizedDescription))")
        }
        let partials = try files.contentsOfDirectory(atPath: path).filter { $0.hasPrefix(Self.partialPrefix) }
        for name in partials { try files.removeItem(atPath: (path as NSString).appendingPathComponent(name)) }
        if !partials.isEmpty { logger.notice("removed partial video downloads left by an earlier stop", metadata: ["files": "\(partials.count)"]) }
    }

    /// Deletes copies last written before `cutoff`; how many it deleted. Partial downloads are left
    /// to their writers (and to `prepare` after a crash).
    func removeCopies(writtenBefore cutoff: Date) throws -> Int {
        let files = FileManager.default
        var removed = 0
        for name in try files.contentsOfDirectory(atPath: path) where name.hasSuffix(".mp4") && !name.hasPrefix(Self.partialPrefix) {
            let file = (path as NSString).appendingPathComponent(name)
            guard let written = try files.attributesOfItem(atPath: file)[.modificationDate] as? Date, written < cutoff else { continue }
            try files.removeItem(atPath: file)
            removed += 1
        }
        return removed
    }
}
