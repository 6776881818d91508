import Foundation
import GRDB

extension SQLiteStore: ClientDirectory {
    public func client(keyHash: String) async throws -> Client? {
        try await read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT id, name, signing_secret FROM clients WHERE key_hash = ? AND revoked_at IS NULL"),
                             arguments: [keyHash])
                .map(RowMapping.client)
        }
    }

    public func upsertClient(_ client: Client, keyHash: String, now: Date, budget: ClientBudget) async throws {
        try await write { db in
            try db.cachedStatement(sql: """
                INSERT INTO clients (id, name, key_hash, signing_secret, created_at, budget) VALUES (:id, :name, :hash, :secret, :now, :budget)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, key_hash = excluded.key_hash, revoked_at = NULL,
                    previous_secret = CASE WHEN signing_secret <> excluded.signing_secret THEN signing_secret ELSE previous_secret END,
                    previous_secret_expires_at = CASE WHEN signing_secret <> excluded.signing_secret THEN :graceEnd
                                                      ELSE previous_secret_expires_at END,
                    signing_secret = excluded.signing_secret
                """).execute(arguments: ["id": client.id, "name": client.name, "hash": keyHash, "secret": client.signingSecret,
                                 "budget": budget.isUnlimited ? nil : budget.text,
                                 "now": now.timeIntervalSince1970, "graceEnd": now.addingTimeInterval(Client.replacedSecretGrace).timeIntervalSince1970])
        }
    }

    public func revokeClients(prefix: String, keeping keep: Set<String>, at date: Date) async throws -> Int {
        let kept = try TaskColumns.text(keep.sorted())
        return try await write { db in
            try db.cachedStatement(sql: """
                UPDATE clients SET revoked_at = :at
                WHERE substr(id, 1, length(:prefix)) = :prefix AND revoked_at IS NULL AND id NOT IN (SELECT value FROM json_each(:kept))
                """).execute(arguments: ["at": date.timeIntervalSince1970, "prefix": prefix, "kept": kept])
            return db.changesCount
        }
    }

    public func clientCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM clients WHERE revoked_at IS NULL") ?? 0 }
    }

    public func sharedSecret(named name: String, candidate: String) async throws -> String {
        try await write { db in
            try db.cachedStatement(sql: "INSERT INTO shared_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .execute(arguments: [name, candidate])
            return try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM shared_secrets WHERE name = ?"), arguments: [name]) ?? candidate
        }
    }

    public func clients() async throws -> [ClientRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM clients ORDER BY created_at, id").map(RowMapping.clientRecord)
        }
    }

    public func rotateSecret(clientID: String, newSecret: String, previousValidUntil: Date) async throws -> Bool {
        try await write { db in
            try db.cachedStatement(sql: """
                UPDATE clients SET previous_secret = signing_secret, previous_secret_expires_at = ?, signing_secret = ?
                WHERE id = ? AND revoked_at IS NULL
                """).execute(arguments: [previousValidUntil.timeIntervalSince1970, newSecret, clientID])
            return db.changesCount == 1
        }
    }

    public func revokeClient(id: String, at date: Date) async throws -> Bool {
        try await write { db in
            try db.cachedStatement(sql: "UPDATE clients SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .execute(arguments: [date.timeIntervalSince1970, id])
            return db.changesCount == 1
        }
    }
}
