import Foundation
import GRDB
import Logging

/// Durable state of the relay, one part per concern: components take the part they use, and only
/// the wiring (the application, operator commands, tests) holds the whole. `SQLiteStore` and
/// `PostgresStore` implement every part; each part's two implementations sit side by side in its folder.
///
/// Every method is one transaction, so a crash between two calls leaves the database consistent and
/// the next claim resumes the work; the one exception is PostgreSQL's delivery claim, which claims in
/// one statement and then settles endpoint rate slots and puts back what it cannot send in statements
/// of their own (a crash between them leaves rows leased, which their lease expiry gives back). Claims
/// are exclusive across processes that share the database.
///
/// Durability: a commit waits until it is on disk (through power loss), except the *repeatable*
/// writes (claims, lease releases and delivery-attempt records), whose loss to a power cut only
/// repeats safe work: a lease that was never taken, or a webhook sent again under the same
/// `webhook-id`, which receivers deduplicate. The next durable commit carries them to disk too.
public typealias RelayStore = TaskQueue & Outbox & EventLog & ClientDirectory & EndpointDirectory & UsageLedger & InstanceRegistry
    & UpstreamAccounts & StoreMaintenance

/// Whose rows a read may see: one client's (its API key), or every client's (an operator). Stored and
/// bound as the client's id, or `*` for every client (no client id is `*`); statements filter by it
/// with `scoped(_:_:)`.
public enum ClientScope: Sendable, Equatable {
    case client(String)
    case allClients

    static let allClientsKey = "*"

    /// The scope as the database holds it (a pause's key, a filter's argument).
    var stored: String {
        switch self {
        case .client(let id): id
        case .allClients: Self.allClientsKey
        }
    }

    init(stored: String) {
        self = stored == Self.allClientsKey ? .allClients : .client(stored)
    }

    /// For operators: "all clients" or "client ID".
    public var label: String {
        switch self {
        case .client(let id): "client \(id)"
        case .allClients: "all clients"
        }
    }
}

public enum StoreError: Error, Equatable {
    /// The lease expired and another worker may own the row now; the caller's work is void.
    case leaseLost(String)
    case duplicateTask(String)
    /// A row lacked a value the schema requires.
    case missingValue(String)
}

/// The database answers but is not the schema this build expects.
public struct StoreNotReady: Error, CustomStringConvertible {
    public var description: String
}

/// The database named in the configuration cannot be used; says which and why, in one line.
public struct StoreOpenError: Error, CustomStringConvertible {
    public var location: String
    public var reason: String
    public var description: String { "cannot open the database \(location): \(reason)" }
}

/// Opens the store a setting names: a `postgres://` URL, or else a SQLite file path.
public enum StoreLocation {
    public static func isPostgres(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    /// Every call on the store is bounded by `deadline` (see `StoreDeadline`).
    public static func open(_ location: String, logger: Logger, deadline: Duration = StoreDeadline.defaultLimit) async throws -> any RelayStore {
        if isPostgres(location) { return try await PostgresStore(url: location, logger: logger, deadline: deadline) }
        do {
            return try SQLiteStore(path: location, deadline: deadline)
        } catch let error as DatabaseError {
            throw StoreOpenError(location: display(location), reason: error.message ?? "\(error.resultCode)")
        } catch {
            throw StoreOpenError(location: display(location), reason: "\(error)")
        }
    }

    /// For the banner and `/readyz`: whether the link to the database is encrypted.
    public static func link(_ location: String) -> String {
        guard isPostgres(location) else { return "a local SQLite file" }
        return (try? PostgresLocation(url: location).link) ?? "unknown"
    }

    /// For logs and banners: the location without a password.
    public static func display(_ location: String) -> String {
        guard isPostgres(location), var components = URLComponents(string: location) else {
            return URL(fileURLWithPath: location).path
        }
        if components.password != nil { components.password = "redacted" }
        return components.string ?? "postgres://…"
    }
}
