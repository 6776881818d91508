import Foundation
import PostgresNIO

extension PostgresStore: ClientDirectory {
    public func client(keyHash: String) async throws -> Client? {
        try await rows("SELECT id, name, signing_secret FROM clients WHERE key_hash = \(keyHash) AND revoked_at IS NULL").first.map(RowMapping.client)
    }

    public func upsertClient(_ client: Client, keyHash: String, now: Date, budget: ClientBudget) async throws {
        let graceEnd = now.addingTimeInterval(Client.replacedSecretGrace).timeIntervalSince1970
        let budgetText = budget.isUnlimited ? nil : budget.text
        try await rows("""
            INSERT INTO clients (id, name, key_hash, signing_secret, created_at, budget)
            VALUES (\(client.id), \(client.name), \(keyHash), \(client.signingSecret), \(now.timeIntervalSince1970), \(budgetText))
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, key_hash = excluded.key_hash, revoked_at = NULL,
                previous_secret = CASE WHEN clients.signing_secret <> excluded.signing_secret THEN clients.signing_secret ELSE clients.previous_secret END,
                previous_secret_expires_at = CASE WHEN clients.signing_secret <> excluded.signing_secret THEN \(graceEnd)
                                                  ELSE clients.previous_secret_expires_at END,
                signing_secret = excluded.signing_secret
            """)
    }

    public func clientCount() async throws -> Int {
        try await rows("SELECT COUNT(*) AS count FROM clients WHERE revoked_at IS NULL").first?.integer("count") ?? 0
    }

    public func sharedSecret(named name: String, candidate: String) async throws -> String {
        try await rows("""
            INSERT INTO shared_secrets (name, value) VALUES (\(name), \(candidate)) ON CONFLICT (name) DO NOTHING
            """)
        return try await rows("SELECT value FROM shared_secrets WHERE name = \(name)").first.map { try $0.text("value") } ?? candidate
    }

    public func clients() async throws -> [ClientRecord] {
        try await rows("SELECT * FROM clients ORDER BY created_at, id").map(RowMapping.clientRecord)
    }

    public func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool {
        try await !rows("""
            UPDATE clients SET previous_secret = signing_secret, previous_secret_expires_at = \(previousValidUntil.timeIntervalSince1970),
                signing_secret = \(newSecret)
            WHERE id = \(clientID) AND revoked_at IS NULL RETURNING id
            """).isEmpty
    }

    public func revokeClient(id: String, at date: Date) async throws -> Bool {
        try await !rows("UPDATE clients SET revoked_at = \(date.timeIntervalSince1970) WHERE id = \(id) AND revoked_at IS NULL RETURNING id").isEmpty
    }

    public func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int {
        try await rows("""
            UPDATE clients SET revoked_at = \(date.timeIntervalSince1970)
            WHERE left(id, length(\(prefix))) = \(prefix) AND revoked_at IS NULL AND NOT (id = ANY(\(keep.sorted())))
            RETURNING id
            """).count
    }
}
