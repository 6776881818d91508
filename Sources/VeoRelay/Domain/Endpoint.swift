import Foundation

/// A place a client registered once to receive its events: each with its own filter, signing keys,
/// optional rate and health. Every event of the client's tasks whose type the filter names is
/// delivered there, beside the task's own `callback_url`.
public struct Endpoint: Sendable, Equatable {
    public var id: String
    public var clientID: String
    public var url: String
    public var description: String
    /// The event types delivered here, sorted (see `EventTypeName`).
    public var eventTypes: [String]
    public var enabled: Bool
    /// Why the relay disabled it (nil when enabled, or disabled by its client).
    public var disabledReason: String?
    /// Deliveries per second, across every relay instance on the database; nil: unlimited.
    public var maxRate: Int?
    public var signatures: Set<SignatureScheme>
    /// Since when every attempt has failed; nil after a success.
    public var failingSince: Date?
    public var rotationEndsAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String = Identifier.make(prefix: "ep_"), clientID: String, url: String, description: String = "",
                eventTypes: [String] = EventTypeName.endpointDefault, enabled: Bool = true, maxRate: Int? = nil,
                signatures: Set<SignatureScheme> = [.v1], now: Date) {
        self.id = id
        self.clientID = clientID
        self.url = url
        self.description = description
        self.eventTypes = eventTypes.sorted()
        self.enabled = enabled
        self.maxRate = maxRate
        self.signatures = signatures
        self.createdAt = now
        self.updatedAt = now
    }

    public var destination: String { CallbackDestination.key(for: url) }

    /// The deliveries an endpoint may take per second at most.
    public static let maxRateLimit = 1_000
    public static let maxDescriptionLength = 500
}

/// How an endpoint has fared over a recent window (the console's health figures).
public struct EndpointHealth: Sendable, Equatable {
    public var attempts = 0
    public var succeeded = 0
    public var lastError: String?
    public var lastAttemptAt: Date?

    public init() {}

    /// Succeeded attempts over all attempts; nil without any.
    public var successRate: Double? { attempts == 0 ? nil : Double(succeeded) / Double(attempts) }
}
