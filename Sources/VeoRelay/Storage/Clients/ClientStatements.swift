import Foundation

/// The client directory's statements, the same on both engines.
enum ClientStatements {
    static let byKeyHash = Statement("SELECT id, name, signing_secret FROM clients WHERE key_hash = $1 AND revoked_at IS NULL")

    /// 1 id, 2 name, 3 key hash, 4 secret, 5 now, 6 budget, 7 when a replaced secret stops signing.
    static let upsert = Statement("""
        INSERT INTO clients (id, name, key_hash, signing_secret, created_at, budget) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, key_hash = excluded.key_hash, revoked_at = NULL,
            previous_secret = CASE WHEN clients.signing_secret <> excluded.signing_secret THEN clients.signing_secret
                                   ELSE clients.previous_secret END,
            previous_secret_expires_at = CASE WHEN clients.signing_secret <> excluded.signing_secret THEN $7
                                              ELSE clients.previous_secret_expires_at END,
            signing_secret = excluded.signing_secret
        """)

    static let count = Statement("SELECT COUNT(*) AS count FROM clients WHERE revoked_at IS NULL")
    static let all = Statement("SELECT * FROM clients ORDER BY created_at, id")

    /// 1 until, 2 new secret, 3 id.
    static let rotate = Statement("""
        UPDATE clients SET previous_secret = signing_secret, previous_secret_expires_at = $1, signing_secret = $2
        WHERE id = $3 AND revoked_at IS NULL RETURNING id
        """)

    static let revoke = Statement("UPDATE clients SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id")

    /// 1 when, 2 id prefix, 3 the ids kept.
    static let revokeByPrefix = Statement("""
        UPDATE clients SET revoked_at = $1
        WHERE substr(id, 1, length($2)) = $2 AND revoked_at IS NULL AND id NOT IN LIST($3)
        RETURNING id
        """)

    static let insertSharedSecret = Statement("INSERT INTO shared_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
    static let sharedSecret = Statement("SELECT value FROM shared_secrets WHERE name = $1")
}

extension ClientDirectory where Self: StatementRunner {
    public func client(keyHash: String) async throws -> Client? {
        try await first(ClientStatements.byKeyHash, [keyHash]) { try RowMapping.client($0) }
    }

    public func upsertClient(_ client: Client, keyHash: String, now: Date, budget: ClientBudget) async throws {
        try await changed(ClientStatements.upsert, [client.id, client.name, keyHash, client.signingSecret, now,
                                                    budget.isUnlimited ? nil : budget.text, now.addingTimeInterval(Client.replacedSecretGrace)])
    }

    public func clientCount() async throws -> Int {
        try await first(ClientStatements.count) { try $0.integer("count") } ?? 0
    }

    public func clients() async throws -> [ClientRecord] {
        try await rows(ClientStatements.all) { try RowMapping.clientRecord($0) }
    }

    public func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool {
        try await changed(ClientStatements.rotate, [previousValidUntil, newSecret, clientID]) == 1
    }

    public func revokeClient(id: String, at date: Date) async throws -> Bool {
        try await changed(ClientStatements.revoke, [date, id]) == 1
    }

    public func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int {
        try await changed(ClientStatements.revokeByPrefix, [date, prefix, keep.sorted()])
    }

    public func sharedSecret(named name: String, candidate: String) async throws -> String {
        try await run([BoundStatement(ClientStatements.insertSharedSecret, [name, candidate]),
                       BoundStatement(ClientStatements.sharedSecret, [name])], access: .write) { rows in
            try rows[1].first.map { try $0.text("value") } ?? candidate
        }
    }
}
