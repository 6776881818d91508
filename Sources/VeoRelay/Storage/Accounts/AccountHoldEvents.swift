import Foundation
import GRDB
import PostgresNIO

/// `UpstreamAccounts.holdAccount` and `releaseAccount` on each engine (each writes its events its own
/// way): a hold begins or ends, and the clients whose tasks the key carries are told
/// (`upstream.unavailable`, `upstream.restored`), in one transaction.
extension SQLiteStore {
    public func holdAccount(key: String, reason: String, at now: Date, firstProbeAt: Date) async throws -> (began: Bool, nextProbeAt: Date) {
        try await write { db in
            guard let held = try db.first(AccountStatements.hold, [key, reason, now, firstProbeAt]) else { throw StoreError.missingValue("upstream_accounts") }
            let nextProbeAt = try held.date("next_probe_at")
            guard try held.integer("began") == 1 else { return (false, nextProbeAt) }
            for row in try db.rows(AccountStatements.toldOfStanding, AccountStatements.toldArguments(.upstreamUnavailable, key: key)) {
                try Self.writeClientEvent(try UpstreamStandingEvent.unavailable(key: key, reason: reason, at: now, nextProbeAt: firstProbeAt),
                                          clientID: row["client_id"], db: db)
            }
            return (true, nextProbeAt)
        }
    }

    public func releaseAccount(key: String, at now: Date) async throws -> Date? {
        try await write { db in
            guard let since: Double = try db.first(AccountStatements.release, [key])?["held_since"] else { return nil }
            let began = Date(timeIntervalSince1970: since)
            for row in try db.rows(AccountStatements.toldOfStanding, AccountStatements.toldArguments(.upstreamRestored, key: key)) {
                try Self.writeClientEvent(try UpstreamStandingEvent.restored(key: key, heldSince: began, at: now), clientID: row["client_id"], db: db)
            }
            return began
        }
    }
}

extension PostgresStore {
    public func holdAccount(key: String, reason: String, at now: Date, firstProbeAt: Date) async throws -> (began: Bool, nextProbeAt: Date) {
        try await transaction { connection in
            guard let held = try await self.rows(AccountStatements.hold, [key, reason, now, firstProbeAt], on: connection).first
            else { throw StoreError.missingValue("upstream_accounts") }
            let nextProbeAt = try held.date("next_probe_at")
            guard try held.integer("began") == 1 else { return (false, nextProbeAt) }
            let told = try await self.rows(AccountStatements.toldOfStanding, AccountStatements.toldArguments(.upstreamUnavailable, key: key),
                                           on: connection)
            try await self.insertEvents(try told.map { row in
                NewEventRow(try UpstreamStandingEvent.unavailable(key: key, reason: reason, at: now, nextProbeAt: firstProbeAt),
                            clientID: try row.text("client_id"))
            }, on: connection)
            return (true, nextProbeAt)
        }
    }

    public func releaseAccount(key: String, at now: Date) async throws -> Date? {
        try await transaction { connection in
            guard let began = try await self.rows(AccountStatements.release, [key], on: connection).first.map({ try $0.date("held_since") })
            else { return nil }
            let told = try await self.rows(AccountStatements.toldOfStanding, AccountStatements.toldArguments(.upstreamRestored, key: key),
                                           on: connection)
            try await self.insertEvents(try told.map { row in
                NewEventRow(try UpstreamStandingEvent.restored(key: key, heldSince: began, at: now), clientID: try row.text("client_id"))
            }, on: connection)
            return began
        }
    }
}
