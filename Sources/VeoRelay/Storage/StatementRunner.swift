import Foundation

/// How a statement touches the database (see `RelayStore` on durability).
public enum StatementAccess: Sendable {
    case read
    /// Committed once it is on disk.
    case write
    /// Committed without waiting for the disk: its loss to a power cut only repeats safe work.
    case repeatableWrite
}

/// What both engines offer the queries they share: statements run in order in one transaction.
/// Every store part whose methods are such statements is implemented once, on this protocol, in its
/// folder's `…Statements.swift`. (Public only because the store parts it implements are.)
public protocol StatementRunner: Sendable {
    /// Runs `statements` in one transaction and hands `result` the rows of each, in order, before it ends.
    func run<T: Sendable>(_ statements: [BoundStatement], access: StatementAccess,
                          result: @escaping @Sendable ([[any StoredRow]]) throws -> T) async throws -> T
}

extension StatementRunner {
    /// One statement's rows, each mapped.
    func rows<T: Sendable>(_ statement: Statement, _ arguments: [any SQLBindable] = [], access: StatementAccess = .read,
                           _ map: @escaping @Sendable (any StoredRow) throws -> T) async throws -> [T] {
        try await run([BoundStatement(statement, arguments)], access: access) { try $0[0].map(map) }
    }

    /// One statement's first row, mapped.
    func first<T: Sendable>(_ statement: Statement, _ arguments: [any SQLBindable] = [], access: StatementAccess = .read,
                            _ map: @escaping @Sendable (any StoredRow) throws -> T) async throws -> T? {
        try await run([BoundStatement(statement, arguments)], access: access) { try $0[0].first.map(map) }
    }

    /// How many rows a write's `RETURNING` gave back: the rows it changed.
    @discardableResult
    func changed(_ statement: Statement, _ arguments: [any SQLBindable] = [], access: StatementAccess = .write) async throws -> Int {
        try await run([BoundStatement(statement, arguments)], access: access) { $0[0].count }
    }
}
