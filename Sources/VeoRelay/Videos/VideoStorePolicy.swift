import Foundation

/// `--store-videos` and its settings: where the relay keeps its copies of finished videos, and how
/// it fetches them.
public struct VideoStorePolicy: Sendable {
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
