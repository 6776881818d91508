import Foundation

/// Makes sure someone can call the relay: keys from configuration are written to the client table
/// (hashed) and configured keys no longer in the configuration are revoked; with none configured
/// and no usable client stored, one client is created and its key and secret are shown once.
public enum ClientBootstrap {
    public enum Outcome: Sendable, Equatable {
        /// `others`: clients stored in the database (created with `keys create` or generated) whose keys
        /// authenticate too.
        case configured(count: Int, others: Int)
        case created(name: String, apiKey: String, signingSecret: String)
        case stored(count: Int)
    }

    /// Ids of clients whose key comes from configuration.
    public static let configuredPrefix = "env_"

    /// Clients it creates get `budget`.
    public static func run(store: any ClientDirectory, apiKeys: [String], webhookSecret: String?, budget: ClientBudget = .unlimited,
                           now: Date) async throws -> Outcome {
        if !apiKeys.isEmpty {
            guard let webhookSecret else {
                throw ConfigurationError("VEO_RELAY_WEBHOOK_SECRET (--webhook-secret) is required with VEO_RELAY_API_KEYS; create one with `veo-relay secret`")
            }
            // A `whsec_` secret, a `whsk_` Ed25519 key, or both separated by a space (v1 and v1a signatures).
            let secret: SigningKeys
            do { secret = try SigningKeys(parsing: webhookSecret) } catch { throw ConfigurationError("webhook secret: \(error)") }
            var configured: Set<String> = []
            for key in apiKeys {
                let hash = APIKey.hash(key)
                let id = configuredPrefix + hash.prefix(12)
                configured.insert(id)
                try await store.upsertClient(Client(id: id, name: "configured key \(hash.prefix(6))", signingSecret: secret.stored),
                                             keyHash: hash, now: now, budget: budget)
            }
            _ = try await store.revokeClients(prefix: configuredPrefix, keeping: configured, at: now)
            return .configured(count: apiKeys.count, others: max(0, try await store.clientCount() - configured.count))
        }
        _ = try await store.revokeClients(prefix: configuredPrefix, keeping: [], at: now)
        let count = try await store.clientCount()
        if count > 0 { return .stored(count: count) }
        let key = APIKey.generate()
        let secret = WebhookSecret.generate().encoded
        try await store.upsertClient(Client(id: "default", name: "default", signingSecret: secret), keyHash: APIKey.hash(key), now: now,
                                     budget: budget)
        return .created(name: "default", apiKey: key, signingSecret: secret)
    }
}
