import Foundation

/// The relay's API clients (keys stored only as hashes), their signing secrets and rotations, and
/// the secrets every instance on the database shares.
public protocol ClientDirectory: Sendable {
    /// The unrevoked client holding this key.
    func client(keyHash: String) async throws -> Client?
    /// Inserts or replaces the client with this id (un-revoking it). A changed secret is a rotation:
    /// the old one keeps signing for a grace period. A new client gets `budget`; an existing one keeps its own.
    func upsertClient(_ client: Client, keyHash: String, now: Date, budget: ClientBudget) async throws
    func clientCount() async throws -> Int
    func clients() async throws -> [ClientRecord]
    /// Makes `newSecret` current; the old one keeps signing too until `previousValidUntil`.
    func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool
    func revokeClient(id: String, at date: Date) async throws -> Bool
    /// Revokes the unrevoked clients whose id starts with `prefix` but is not in `keep` (configured
    /// keys that were removed from the configuration); returns how many.
    func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int
    /// A secret shared by every instance on this database (it signs watch tokens and console
    /// sessions); the first caller's `candidate` becomes it.
    func sharedSecret(named name: String, candidate: String) async throws -> String
}

extension ClientDirectory {
    /// A client without limits (or an existing one, keeping its own).
    public func upsertClient(_ client: Client, keyHash: String, now: Date) async throws {
        try await upsertClient(client, keyHash: keyHash, now: now, budget: .unlimited)
    }
}

/// An API client: its key is stored only as a hash; its secret signs its webhooks.
public struct Client: Sendable, Equatable, CustomStringConvertible {
    public var id: String
    public var name: String
    public var signingSecret: String

    public init(id: String, name: String, signingSecret: String) {
        self.id = id
        self.name = name
        self.signingSecret = signingSecret
    }

    public var description: String { "Client(\(id), \(name))" }

    /// When `upsertClient` changes a client's secret, the old one keeps signing this long.
    public static let replacedSecretGrace: TimeInterval = 86_400
}

/// A client as `keys list` shows it: never its key, never its secret.
public struct ClientRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var budget: ClientBudget
    public var createdAt: Date
    public var revokedAt: Date?
    public var rotationEndsAt: Date?
}
