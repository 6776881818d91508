import Foundation
import Hummingbird
import Logging
import NIOCore

/// A stored video's fingerprint.
struct StoredBytes: Equatable {
    var sha256: String
    var bytes: Int
}

/// Where the relay keeps video copies: what the storer, the file route and retention need. The one
/// implementation is a directory (`DirectoryVideoStore`); an object store would be another, and would
/// need tests against a real server of its kind before it shipped.
protocol VideoStore: Sendable {
    /// Makes sure copies can be written, and clears what an interrupted write left; throws a
    /// `ConfigurationError` (the relay does not start) when it cannot be used.
    func prepare(logger: Logger) throws
    /// Writes video `index` of a task from `body`, whole or not at all, refusing it past `maxBytes`;
    /// a copy written before is replaced whole.
    func write(taskID: String, index: Int, maxBytes: Int64, from body: some AsyncSequence<ByteBuffer, any Error> & Sendable) async throws -> StoredBytes
    /// The copy as an HTTP response (ranges, validators); `HTTPError(.notFound)` when it is gone.
    func respond(taskID: String, index: Int, to request: Request, context: RelayRequestContext) async throws -> Response
    /// Deletes copies written before `cutoff`; how many.
    func removeCopies(writtenBefore cutoff: Date) throws -> Int
}
