import Foundation

/// The relay's own copy of one of a task's videos (`--store-videos`), or why it has none. The
/// upstream's URLs expire a day after the job; the copy outlives them.
public struct VideoCopy: Codable, Sendable, Equatable {
    /// The video's place in the task's result, as `GET /v1/tasks/{id}/videos/{index}` names it.
    public var index: Int
    /// Where the relay serves the copy; nil when there is none.
    public var storedURL: String?
    /// The SHA-256 of the stored bytes, lowercase hex.
    public var sha256: String?
    public var bytes: Int?
    /// Why there is no copy (the event then carries only the upstream's URL).
    public var storeError: String?

    public init(index: Int, storedURL: String, sha256: String, bytes: Int) {
        self.index = index
        self.storedURL = storedURL
        self.sha256 = sha256
        self.bytes = bytes
    }

    public init(index: Int, storeError: String) {
        self.index = index
        self.storeError = storeError
    }

    enum CodingKeys: String, CodingKey {
        case index, sha256, bytes
        case storedURL = "stored_url"
        case storeError = "store_error"
    }
}
