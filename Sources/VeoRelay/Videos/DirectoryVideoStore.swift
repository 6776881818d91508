import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFileSystem

/// The directory of stored videos: `<task id>.<index>.mp4`, each streamed to a `.partial-*` file,
/// synced, then renamed into place (and the directory synced), so a copy is whole or absent.
/// Hummingbird's file server answers for it: `Range` (206), `ETag`/`If-None-Match` (304),
/// `Content-Length`, `video/mp4`.
public struct DirectoryVideoStore: VideoStore {
    public let path: String
    static let partialPrefix = ".partial-"
    private let files: FileMiddleware<RelayRequestContext, LocalFileSystem>

    public init(path: String) {
        self.path = path
        files = FileMiddleware(path, cacheControl: .init([(MediaType(type: .video), [.private, .maxAge(86_400)])]))
    }

    static func name(taskID: String, index: Int) -> String { "\(taskID).\(index).mp4" }

    private func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func prepare(logger: Logger) throws {
        let fileManager = FileManager.default
        let probe = file(Self.partialPrefix + "probe")
        do {
            try fileManager.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Data("probe".utf8).write(to: URL(fileURLWithPath: probe))
            try fileManager.removeItem(atPath: probe)
        } catch {
            throw ConfigurationError("--store-videos: the directory '\(path)' is not writable (\(error.localizedDescription))")
        }
        let partials = try fileManager.contentsOfDirectory(atPath: path).filter { $0.hasPrefix(Self.partialPrefix) }
        for name in partials { try fileManager.removeItem(atPath: file(name)) }
        if !partials.isEmpty { logger.notice("removed partial video downloads left by an earlier stop", metadata: ["files": "\(partials.count)"]) }
    }

    func write(taskID: String, index: Int, maxBytes: Int64, from body: some AsyncSequence<ByteBuffer, any Error> & Sendable) async throws -> StoredBytes {
        let partial = FilePath(file(Self.partialPrefix + UUID().uuidString))
        do {
            var hasher = SHA256()
            var total: Int64 = 0
            // A plain new file (not NIO's transactional creation): it is the partial file, renamed below.
            let options = OpenOptions.Write(existingFile: .none, newFile: OpenOptions.NewFile(transactionalCreation: false))
            try await FileSystem.shared.withFileHandle(forWritingAt: partial, options: options) { handle in
                var writer = handle.bufferedWriter()
                for try await chunk in body {
                    total += Int64(chunk.readableBytes)
                    guard total <= maxBytes else {
                        throw VideoFetchFailure.permanent(.tooLarge, "larger than the \(maxBytes)-byte cap (more than \(total) bytes streamed)")
                    }
                    chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    try await writer.write(contentsOf: chunk)
                }
                try await writer.flush()
                try await handle.synchronize()
            }
            try rename(partial.string, to: file(Self.name(taskID: taskID, index: index)))
            return StoredBytes(sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(), bytes: Int(total))
        } catch {
            // Synchronously: a write cut short by its time limit runs cancelled, where async file calls give up.
            try? FileManager.default.removeItem(atPath: partial.string)
            throw error
        }
    }

    /// Renames atomically (replacing a copy an interrupted attempt already put in place), then syncs
    /// the directory so the name survives a power loss.
    private func rename(_ partial: String, to final: String) throws {
        guard Foundation.rename(partial, final) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let directory = open(path, O_RDONLY)
        guard directory >= 0 else { return }
        defer { close(directory) }
        _ = fsync(directory)
    }

    func respond(taskID: String, index: Int, to request: Request, context: RelayRequestContext) async throws -> Response {
        var head = request.head
        head.path = "/" + Self.name(taskID: taskID, index: index)
        return try await files.handle(Request(head: head, body: RequestBody(buffer: ByteBuffer())), context: context) { _, _ in
            throw HTTPError(.notFound)
        }
    }

    /// Partial downloads are left to their writers (and to `prepare` after a crash).
    func removeCopies(writtenBefore cutoff: Date) throws -> Int {
        let fileManager = FileManager.default
        var removed = 0
        for name in try fileManager.contentsOfDirectory(atPath: path) where name.hasSuffix(".mp4") && !name.hasPrefix(Self.partialPrefix) {
            guard let written = try fileManager.attributesOfItem(atPath: file(name))[.modificationDate] as? Date, written < cutoff else { continue }
            try fileManager.removeItem(atPath: file(name))
            removed += 1
        }
        return removed
    }
}
