import Foundation
import GRDB

extension SQLiteStore: StatementRunner {
    public func run<T: Sendable>(_ statements: [BoundStatement], access: StatementAccess,
                                 result: @escaping @Sendable ([[any StoredRow]]) throws -> T) async throws -> T {
        let body: @Sendable (Database) throws -> T = { db in try result(statements.map { try db.rows($0) }) }
        switch access {
        case .read: return try await read(body)
        case .write: return try await write(body)
        case .repeatableWrite: return try await repeatableWrite(body)
        }
    }
}

extension Database {
    /// A shared statement's rows (none for a write without `RETURNING`), on this connection's cached statement.
    @discardableResult
    func rows(_ bound: BoundStatement) throws -> [Row] {
        let statement = try cachedStatement(sql: bound.statement.sqlite)
        guard statement.columnCount > 0 else {
            try statement.execute(arguments: bound.sqliteArguments)
            return []
        }
        return try Row.fetchAll(statement, arguments: bound.sqliteArguments)
    }

    @discardableResult
    func rows(_ statement: Statement, _ arguments: [any SQLBindable] = []) throws -> [Row] {
        try rows(BoundStatement(statement, arguments))
    }

    /// A shared statement's first row: intake reads a budget and its sums this way for every task.
    func first(_ statement: Statement, _ arguments: [any SQLBindable] = []) throws -> Row? {
        try Row.fetchOne(cachedStatement(sql: statement.sqlite), arguments: BoundStatement(statement, arguments).sqliteArguments)
    }
}

extension BoundStatement {
    var sqliteArguments: StatementArguments { StatementArguments(arguments.map(\.databaseValue)) }
}

extension SQLValue {
    /// As SQLite stores it: a list as a JSON array (what `json_each` reads).
    var databaseValue: DatabaseValue {
        switch self {
        case .text(let value): value.databaseValue
        case .real(let value): value.databaseValue
        case .integer(let value): value.databaseValue
        case .blob(let value): value.databaseValue
        case .list(let values): String(decoding: (try? JSONEncoder().encode(values)) ?? Data("[]".utf8), as: UTF8.self).databaseValue
        case .null: .null
        }
    }
}

/// These parts are made wholly of shared statements (`ClientStatements`, `EventStatements`,
/// `UsageStatements`, `EndpointStatements`, `InstanceStatements`; auto-disable in `EndpointAutoDisable`).
extension SQLiteStore: ClientDirectory, EventLog, UsageLedger, EndpointDirectory, InstanceRegistry, UpstreamAccounts {}
