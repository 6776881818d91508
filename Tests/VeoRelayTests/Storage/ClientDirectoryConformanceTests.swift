import Foundation
import Testing
@testable import VeoRelay

/// The client directory (`ClientDirectory`): keys, secrets, rotation and revocation.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Client directory conformance", .stopsWhatItStarts)
struct ClientDirectoryConformanceTests {
    @Test(arguments: TestStores.all)
    func clientsSecretsRotationAndRevocation(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let store = fixture.store
        #expect(try await store.client(keyHash: "hash-1") == fixture.client)
        #expect(try await store.clientCount() == 1)
        let newSecret = WebhookSecret.generate().encoded
        #expect(try await store.rotateSecret(clientID: fixture.client.id, newSecret: newSecret, previousValidUntil: fixture.t0.addingTimeInterval(60)))
        let taskID = try await fixture.finishedTask("signed twice")
        let lease = fixture.lease("a/dispatcher/1", until: 60)
        let during = try #require(try await store.claimDeliveries(now: fixture.t0, limit: 1, lease: lease, excluding: []).first)
        #expect(during.signingSecrets == [newSecret, fixture.client.signingSecret])
        try await store.releaseDeliveries([during.key], lease: lease)
        let after = try #require(try await store.claimDeliveries(now: fixture.t0.addingTimeInterval(61), limit: 1, lease: lease, excluding: []).first)
        #expect(after.signingSecrets == [newSecret], "the old secret ends with its grace period")
        #expect(after.taskID == taskID)

        #expect(try await store.revokeClient(id: fixture.client.id, at: fixture.t0))
        #expect(try await store.client(keyHash: "hash-1") == nil)
        #expect(try await store.clientCount() == 0)
        #expect(try await store.clients().first?.revokedAt == fixture.t0, "listed with its revocation")
        try await store.upsertClient(fixture.client, keyHash: "hash-1", now: fixture.t0)
        #expect(try await store.client(keyHash: "hash-1") != nil, "configured again, it works again")

        for id in ["env_a", "env_b", "env_c"] {
            try await store.upsertClient(Client(id: id, name: id, signingSecret: newSecret), keyHash: "hash-\(id)", now: fixture.t0)
        }
        #expect(try await store.revokeClients(prefix: "env_", keeping: ["env_b"], at: fixture.t0) == 2)
        #expect(try await store.client(keyHash: "hash-env_b") != nil)
        #expect(try await store.client(keyHash: "hash-env_a") == nil)
        #expect(try await store.client(keyHash: "hash-1") != nil, "other clients are untouched")
        fixture.store.close()
    }

    /// Every instance on one database signs watch tokens and console sessions with the same secret:
    /// the first candidate wins, later ones read it.
    @Test(arguments: TestStores.all)
    func theFirstSharedSecretCandidateBecomesEveryonesSecret(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        #expect(try await fixture.store.sharedSecret(named: "watch", candidate: "first") == "first")
        #expect(try await fixture.store.sharedSecret(named: "watch", candidate: "second") == "first")
        #expect(try await fixture.store.sharedSecret(named: "console", candidate: "other") == "other", "each name is its own secret")
        fixture.store.close()
    }
}
