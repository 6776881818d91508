import Foundation
import PostgresNIO

extension PostgresStore: StatementRunner {
    /// One statement alone is its own transaction (one round trip); several share one.
    public func run<T: Sendable>(_ statements: [BoundStatement], access: StatementAccess,
                                 result: @escaping @Sendable ([[any StoredRow]]) throws -> T) async throws -> T {
        if statements.count == 1, access != .repeatableWrite {
            return try result([try await rows(statements[0].query)])
        }
        return try await transaction(repeatable: access == .repeatableWrite) { connection in
            var rows: [[any StoredRow]] = []
            for statement in statements { rows.append(try await self.rows(statement.query, on: connection)) }
            return try result(rows)
        }
    }

    /// A shared statement's rows: on `connection` inside a transaction, else on its own.
    @discardableResult
    func rows(_ statement: Statement, _ arguments: [any SQLBindable] = [], on connection: PostgresConnection? = nil)
    async throws -> [PostgresRandomAccessRow] {
        try await rows(BoundStatement(statement, arguments).query, on: connection)
    }
}

extension BoundStatement {
    var query: PostgresQuery {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .text(let value): bindings.append(value)
            case .real(let value): bindings.append(value)
            case .integer(let value): bindings.append(value)
            case .blob(let value): bindings.append(ByteBuffer(bytes: value))
            case .list(let values): bindings.append(values)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: statement.postgres, binds: bindings)
    }
}

/// These parts are made wholly of shared statements (`ClientStatements`, `EventStatements`,
/// `UsageStatements`, `EndpointStatements`, `InstanceStatements`; auto-disable in `EndpointAutoDisable`).
extension PostgresStore: ClientDirectory, EventLog, UsageLedger, EndpointDirectory, InstanceRegistry, UpstreamAccounts {}
