import Foundation

/// One SQL statement, written once for both engines in PostgreSQL's placeholder form (`$1`, `$2`, …).
/// SQLite runs the same text with its own numbered placeholders (`?1`, `?2`, …), which mean the same: a
/// number names one argument however often, and in whatever order, the text uses it. A list argument
/// (`SQLValue.list`) is written `LIST($n)` where a subquery may stand (`x IN LIST($2)`): PostgreSQL
/// reads it as an array, SQLite as a JSON array.
///
/// Statements that need what only one engine has (row locks, `json_to_recordset`, `set_config`) are
/// written in that engine's store; everything else is one `Statement` in the `…Statements.swift` file
/// beside its store protocol.
public struct Statement: Sendable {
    public let postgres: String
    public let sqlite: String

    public init(_ text: String) {
        postgres = text.replacing(/LIST\((\$\d+)\)/) { "(SELECT unnest(CAST(\($0.1) AS text[])))" }
        sqlite = text.replacing(/LIST\((\$\d+)\)/) { "(SELECT value FROM json_each(\($0.1)))" }
            .replacing(/\$(\d+)/) { "?\($0.1)" }
    }
}

/// A statement with its arguments, in placeholder order.
public struct BoundStatement: Sendable {
    public var statement: Statement
    public var arguments: [SQLValue]

    public init(_ statement: Statement, _ arguments: [any SQLBindable] = []) {
        self.statement = statement
        self.arguments = arguments.map(\.sqlValue)
    }
}

/// An argument as both engines bind it. PostgreSQL receives NULL without a type, so a statement that
/// tests an argument for NULL says its type: `CAST($1 AS TEXT) IS NULL`.
public enum SQLValue: Sendable {
    case text(String)
    case real(Double)
    case integer(Int)
    case blob(Data)
    case list([String])
    case null
}

/// A Swift value a statement takes as an argument. Times are unix seconds and flags 0 or 1, as
/// both schemas store them.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension String: SQLBindable {
    public var sqlValue: SQLValue { .text(self) }
}

extension Int: SQLBindable {
    public var sqlValue: SQLValue { .integer(self) }
}

extension Bool: SQLBindable {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
}

extension Double: SQLBindable {
    public var sqlValue: SQLValue { .real(self) }
}

extension Date: SQLBindable {
    public var sqlValue: SQLValue { .real(timeIntervalSince1970) }
}

extension Data: SQLBindable {
    public var sqlValue: SQLValue { .blob(self) }
}

extension Array: SQLBindable where Element == String {
    public var sqlValue: SQLValue { .list(self) }
}

extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

extension ClientScope: SQLBindable {
    public var sqlValue: SQLValue { .text(stored) }
}

/// The one filter by client scope: `scoped("t.client_id", 2)` is true for the rows of the client bound
/// as `$2`, or for every row when `$2` is `ClientScope.allClients`.
func scoped(_ column: String, _ parameter: Int) -> String {
    "($\(parameter) = '\(ClientScope.allClientsKey)' OR \(column) = $\(parameter))"
}
