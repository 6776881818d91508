import Foundation
import GRDB
import PostgresNIO

/// `EndpointDirectory.disableFailingEndpoints` on each engine (each writes its events its own way):
/// an endpoint is disabled, its deliveries held and its `endpoint.disabled` event written in one
/// transaction, by whichever instance flips `enabled` first (the other's `disable` changes nothing).
extension SQLiteStore {
    public func disableFailingEndpoints(failingBefore cutoff: Date, now: Date) async throws -> [Endpoint] {
        try await write { db in
            try db.rows(EndpointStatements.failing, [cutoff]).map(RowMapping.endpoint).compactMap { failing in
                let endpoint = EndpointEvents.disabling(failing, cutoff: cutoff)
                guard try !db.rows(EndpointStatements.disable, [endpoint.disabledReason, now, endpoint.id]).isEmpty else { return nil }
                try db.rows(EndpointStatements.moveDeliveries, EndpointStatements.moveArguments(endpoint, now: now))
                try Self.writeClientEvent(EndpointEvents.disabled(endpoint, at: now), clientID: endpoint.clientID, db: db)
                return endpoint
            }
        }
    }
}

extension PostgresStore {
    public func disableFailingEndpoints(failingBefore cutoff: Date, now: Date) async throws -> [Endpoint] {
        try await transaction { connection in
            var disabled: [Endpoint] = []
            for failing in try await self.rows(EndpointStatements.failing, [cutoff], on: connection).map(RowMapping.endpoint) {
                let endpoint = EndpointEvents.disabling(failing, cutoff: cutoff)
                guard try await !self.rows(EndpointStatements.disable, [endpoint.disabledReason, now, endpoint.id], on: connection).isEmpty
                else { continue }
                try await self.rows(EndpointStatements.moveDeliveries, EndpointStatements.moveArguments(endpoint, now: now), on: connection)
                try await self.insertEvents([NewEventRow(try EndpointEvents.disabled(endpoint, at: now), clientID: endpoint.clientID)],
                                            on: connection)
                disabled.append(endpoint)
            }
            return disabled
        }
    }
}
