import Foundation

/// The clients' registered endpoints: their settings, signing keys, health, and the client events
/// (`endpoint.disabled`) that changes to them announce.
public protocol EndpointDirectory: Sendable {
    func createEndpoint(_ endpoint: Endpoint, keys: SigningKeys) async throws
    /// Newest last.
    func endpoints(scope: ClientScope) async throws -> [Endpoint]
    func endpoint(id: String, scope: ClientScope) async throws -> Endpoint?
    /// Writes `endpoint`'s settings. Its pending deliveries follow a new URL; disabling parks them and
    /// enabling resumes them (and clears its failure streak). False if it no longer exists.
    func updateEndpoint(_ endpoint: Endpoint, now: Date) async throws -> Bool
    /// Deletes it; its pending deliveries end `failed`.
    func deleteEndpoint(id: String, scope: ClientScope) async throws -> Bool
    /// Makes `keys` current; the old ones keep signing until `previousValidUntil`.
    func rotateEndpointKeys(id: String, scope: ClientScope, keys: SigningKeys, previousValidUntil: Date, now: Date) async throws -> Bool
    /// The credentials that sign for it now (current, then previous during a rotation's grace).
    func endpointCredentials(id: String, scope: ClientScope, now: Date) async throws -> [String]?
    /// Attempts since `since` per endpoint of `scope`.
    func endpointHealth(scope: ClientScope, since: Date) async throws -> [String: EndpointHealth]
    /// Disables every enabled endpoint whose attempts have all failed since before `cutoff`, and for each
    /// writes an `endpoint.disabled` event for the client's other endpoints subscribed to it.
    func disableFailingEndpoints(failingBefore cutoff: Date, now: Date) async throws -> [Endpoint]
    /// The `whpk_` keys that verify `v1a` signatures of the client and of each of its endpoints.
    func publishedKeys(clientID: String, now: Date) async throws -> [PublishedKey]
}

/// A public key receivers verify `v1a` signatures with.
public struct PublishedKey: Sendable, Equatable {
    /// nil: the key signs the client's task callbacks.
    public var endpointID: String?
    public var publicKey: String
    /// `current`, or `previous` while a rotation's grace period runs (until `expiresAt`).
    public var state: String
    public var expiresAt: Date?

    /// The keys in a stored current and previous credential text.
    static func keys(endpointID: String?, current: String, previous: String?, previousUntil: Date?) -> [PublishedKey] {
        SigningKeys(stored: current).publicKeys.map { PublishedKey(endpointID: endpointID, publicKey: $0, state: "current") }
            + SigningKeys(stored: previous ?? "").publicKeys.map {
                PublishedKey(endpointID: endpointID, publicKey: $0, state: "previous", expiresAt: previousUntil)
            }
    }
}

/// An endpoint's failure streak after a batch of attempts, applied to its row in the batch's
/// transaction: a success ends the streak (a failure after it in the same batch starts a new one),
/// a failure starts one unless one runs already.
struct EndpointStreak: Sendable, Equatable {
    var endpointID: String
    /// Whether a success in the batch replaces the stored streak.
    var reset: Bool
    /// When the streak that remains began; nil if the last attempt succeeded.
    var failingFrom: Date?

    static func of(_ records: [AttemptRecord]) -> [EndpointStreak] {
        let byEndpoint = Dictionary(grouping: records.filter { $0.attempt.key.target.endpointID != nil }) { $0.attempt.key.target.stored }
        return byEndpoint.map { endpointID, records in
            let ordered = records.sorted { $0.attempt.attemptedAt < $1.attempt.attemptedAt }
            let lastSuccess = ordered.lastIndex(where: \.succeeded)
            let failures = ordered[(lastSuccess.map { $0 + 1 } ?? 0)...]
            return EndpointStreak(endpointID: endpointID, reset: lastSuccess != nil, failingFrom: failures.first?.attempt.attemptedAt)
        }.sorted { $0.endpointID < $1.endpointID }
    }

    var arguments: [any SQLBindable] { [reset, failingFrom, endpointID] }
}

/// Auto-disable's decision and `endpoint.disabled`'s event, the same on both stores.
enum EndpointEvents {
    /// The endpoint as auto-disable leaves it: disabled, saying since when every attempt failed.
    static func disabling(_ endpoint: Endpoint, cutoff: Date) -> Endpoint {
        var disabled = endpoint
        disabled.enabled = false
        disabled.disabledReason = "every attempt failed since \((endpoint.failingSince ?? cutoff).formatted(.iso8601))"
        return disabled
    }

    static func disabled(_ endpoint: Endpoint, at now: Date) throws -> NewEvent {
        try NewEvent(clientEvent: .endpointDisabled, data: EndpointEventData(endpoint, reason: endpoint.disabledReason ?? ""), at: now)
    }
}
