import Foundation

/// A key the relay sends work upstream with. The configured one (`--upstream-key`) is named `default`;
/// operators add more (`veo-relay upstream keys add`), shared by every client or owned by one. A task
/// is polled only with the key that submitted it: the upstream shows a task to its own account only.
public struct UpstreamKey: Sendable, Equatable {
    /// The configured key's name, reserved.
    public static let configuredName = "default"

    public var name: String
    public var secret: Redacted
    /// The one client whose tasks this key carries (and whose tasks no other key carries); nil: shared
    /// by every client without a key of its own.
    public var clientID: String?
    /// Tasks submitted with this key and not yet finished upstream (or claimed to be sent with it),
    /// across every relay on the database.
    public var maxInFlight: Int?
    /// Requests per second with this key, on each relay (within the relay's `--upstream-rate`).
    public var rate: Double?
    /// A disabled key takes no new submission; its tasks are still polled with it.
    public var enabled: Bool
    public var createdAt: Date

    public init(name: String, secret: String, clientID: String? = nil, maxInFlight: Int? = nil, rate: Double? = nil, enabled: Bool = true,
                createdAt: Date) {
        self.name = name
        self.secret = Redacted(secret)
        self.clientID = clientID
        self.maxInFlight = maxInFlight
        self.rate = rate
        self.enabled = enabled
        self.createdAt = createdAt
    }

    /// Names operators can type and read in a log line: letters, digits, `-`, `_` and `.`, up to 64.
    public static func validName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name != configuredName
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }
            && name.allSatisfy(\.isASCII)
    }
}

/// The share of one claim that goes to one key: which queued tasks it may take (its owner's, or those
/// of every client without a key of its own) and how many.
public struct KeyShare: Sendable, Equatable {
    public var key: String
    /// The client whose tasks it carries; nil for a shared key.
    public var clientID: String?
    /// With a limit, the claim counts the key's tasks in flight under a lock and takes only what is left.
    public var maxInFlight: Int?

    public init(key: String, clientID: String? = nil, maxInFlight: Int? = nil) {
        self.key = key
        self.clientID = clientID
        self.maxInFlight = maxInFlight
    }

    /// The configured key, shared, without a limit of its own.
    public static let configured = KeyShare(key: UpstreamKey.configuredName)

    public init(_ key: UpstreamKey) {
        self.init(key: key.name, clientID: key.clientID, maxInFlight: key.maxInFlight)
    }

    /// How many queued tasks a claim of at most `limit` may take with this key, `inFlight` of its
    /// tasks being in flight already.
    func capacity(limit: Int, inFlight: Int) -> Int {
        max(0, min(limit, (maxInFlight ?? limit) - inFlight))
    }
}
