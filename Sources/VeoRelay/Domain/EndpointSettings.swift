import Foundation

/// The fields of `POST /v1/endpoints` and `PATCH /v1/endpoints/{id}`, checked one by one so that a
/// bad one is named: a field left out keeps its value (or its default on create).
public struct EndpointSettings: Sendable, Equatable {
    public var url: String?
    public var description: String?
    public var eventTypes: [String]?
    public var enabled: Bool?
    /// `.some(nil)` clears the rate.
    public var maxRate: Int??
    /// Create only: the schemes its first keys sign with (default `v1`).
    public var signatures: Set<SignatureScheme>?

    static let fields: Set<String> = ["url", "description", "event_types", "enabled", "max_rate", "signatures"]

    public init(parsing json: JSONValue, creating: Bool) throws(ValidationFailure) {
        guard let object = json.objectValue else { throw ValidationFailure(param: nil, "The body must be a JSON object.") }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw ValidationFailure(param: unknown, "Unknown field '\(unknown)'; an endpoint has \(Self.fields.sorted().joined(separator: ", ")).")
        }
        if let value = object["url"] {
            guard let url = value.stringValue, !url.isEmpty, url.utf8.count <= 2_048 else {
                throw ValidationFailure(param: "url", "url must be an http(s) URL of at most 2048 bytes.")
            }
            self.url = url
        } else if creating {
            throw ValidationFailure(param: "url", "url is required.")
        }
        if let value = object["description"] {
            guard let text = value.stringValue, text.count <= Endpoint.maxDescriptionLength else {
                throw ValidationFailure(param: "description", "description must be a string of at most \(Endpoint.maxDescriptionLength) characters.")
            }
            description = text
        }
        if let value = object["event_types"] {
            eventTypes = try RequestValidator.names(value, param: "event_types", allowed: EventTypeName.all) { EventTypeName.all.contains($0) ? $0 : nil }
                .sorted()
        }
        if let value = object["enabled"] {
            guard case .bool(let flag) = value else { throw ValidationFailure(param: "enabled", "enabled must be true or false.") }
            enabled = flag
        }
        if let value = object["max_rate"] {
            switch value {
            case .null: maxRate = .some(nil)
            case .int(let rate) where (1...Endpoint.maxRateLimit).contains(rate): maxRate = .some(rate)
            default: throw ValidationFailure(param: "max_rate", "max_rate must be null or an integer from 1 to \(Endpoint.maxRateLimit) (deliveries per second).")
            }
        }
        if let value = object["signatures"] {
            guard creating else {
                throw ValidationFailure(param: "signatures", "signatures change with a key rotation: POST /v1/endpoints/{id}/rotate-secret.")
            }
            signatures = try Self.schemes(value)
        }
    }

    /// `["v1"]` (HMAC), `["v1a"]` (Ed25519) or both.
    public static func schemes(_ value: JSONValue) throws(ValidationFailure) -> Set<SignatureScheme> {
        try RequestValidator.names(value, param: "signatures", allowed: SignatureScheme.allCases.map(\.rawValue), SignatureScheme.init(rawValue:))
    }

    /// `endpoint` with these settings applied.
    public func applied(to endpoint: Endpoint, at now: Date) -> Endpoint {
        var changed = endpoint
        if let url { changed.url = url }
        if let description { changed.description = description }
        if let eventTypes { changed.eventTypes = eventTypes }
        if let enabled { changed.enabled = enabled }
        if let maxRate { changed.maxRate = maxRate }
        changed.updatedAt = now
        return changed
    }
}
