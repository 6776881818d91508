import Foundation
import Logging
import PostgresNIO

/// The scale-out store: PostgreSQL through postgres-nio, so several relay instances share one
/// database. Claims lock their rows with `FOR UPDATE SKIP LOCKED`, so concurrent instances each take
/// different due rows without waiting on one another; every other method is one transaction.
public final class PostgresStore: Sendable {
    let client: PostgresClient
    private let runner: Task<Void, Never>
    let logger: Logger
    let deadline: StoreDeadline
    let storageFull = StorageFullSignal()

    /// Connects (`postgres://user:password@host:port/database`, with `sslmode` and `sslrootcert` as
    /// `PostgresLocation` reads them) and brings the schema up to date. The first connection is made
    /// alone and bounded by `connectTimeout`, so that a wrong address, wrong credentials or a refused
    /// TLS handshake fail the start with the reason, where the pool would retry quietly forever.
    /// Every later call is bounded by `deadline` (see `StoreDeadline`).
    public init(url: String, logger: Logger = Logger(label: "veo-relay.postgres"), connectTimeout: Duration = .seconds(4),
                deadline limit: Duration = StoreDeadline.defaultLimit) async throws {
        let location = try PostgresLocation(url: url)
        var first = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                     password: location.password, database: location.database,
                                                     tls: try location.connectionTLS())
        first.options.connectTimeout = .interval(Double(connectTimeout.components.seconds))
        do {
            let connection = try await PostgresConnection.connect(configuration: first, id: 0, logger: logger)
            do {
                try await PostgresMigrations.run(on: connection, logger: logger)
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
        } catch {
            // A server that accepts the connection but does not answer in time (a partition, a failover)
            // may answer later: the start waits for it (`StartupWait`). A refusal is final.
            if case .connectTimeout? = (error as? PSQLError)?.underlying as? ChannelError {
                throw StorageFault.unavailable(database: location.name, after: connectTimeout)
            }
            throw StoreOpenError(location: StoreLocation.display(url), reason: location.tlsRefusal(error) ?? Self.reason(error))
        }
        var configuration = PostgresClient.Configuration(host: location.host, port: location.port, username: location.user,
                                                         password: location.password, database: location.database, tls: try location.clientTLS())
        configuration.options.connectTimeout = connectTimeout
        // The server ends a statement past the deadline (the client has given up on it by then), and a
        // transaction left idle by a client that vanished mid-way, so its row locks do not outlive it.
        let milliseconds = limit.components.seconds * 1_000 + limit.components.attoseconds / 1_000_000_000_000_000
        configuration.options.additionalStartupParameters = [("statement_timeout", "\(milliseconds)"),
                                                             ("idle_in_transaction_session_timeout", "\(milliseconds * 6)")]
        // postgres-nio sets no TCP keep-alive on its sockets: an idle connection is probed with a query
        // this often instead, so one to a dead peer is noticed and replaced before a request leases it.
        configuration.options.keepAliveBehavior = .init(frequency: limit)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        self.deadline = StoreDeadline(limit: limit, database: location.name)
        self.runner = Task { await client.run() }
    }

    /// What went wrong, in one line: the server's own message when it sent one (bad password,
    /// unknown database), else the connection error. PSQLError hides both from `description`.
    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return message }
        if let underlying = error.underlying { return "\(underlying)" }
        return "\(error.code)"
    }

    /// Closes the connection pool.
    public func close() {
        runner.cancel()
    }

    /// One prepared statement: on `connection` inside a transaction, else on its own, bounded by the
    /// deadline (see `PreparedClaim`).
    func rows<Statement: PostgresPreparedStatement>(_ statement: Statement, on connection: PostgresConnection? = nil) async throws
    -> [PostgresRandomAccessRow] where Statement.Row == PostgresRandomAccessRow {
        if let connection {
            return try await connection.execute(statement, logger: logger).reduce(into: []) { $0.append($1) }
        }
        return try await bounded { [client, logger] in
            try await client.execute(statement, logger: logger).reduce(into: []) { $0.append($1) }
        }
    }

    /// One statement: on `connection` inside a transaction (whose deadline bounds it), else on its own,
    /// bounded by the deadline.
    @discardableResult
    func rows(_ query: PostgresQuery, on connection: PostgresConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        if let connection {
            return try await connection.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }
        return try await bounded { [client, logger] in
            try await client.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        }
    }

    /// Runs `body` in a transaction, bounded by the deadline. postgres-nio wraps what the body throws;
    /// the store's own errors (`leaseLost`, …) come back out unwrapped, so callers see the same errors
    /// as from SQLite. A `repeatable` transaction (see `RelayStore`) commits without waiting for its
    /// WAL flush.
    func transaction<T: Sendable>(repeatable: Bool = false, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [client, logger] in
            do {
                return try await client.withTransaction(logger: logger) { connection in
                    if repeatable { try await connection.query("SET LOCAL synchronous_commit = off", logger: logger) }
                    return try await body(connection)
                }
            } catch let error as PostgresTransactionError {
                throw error.closureError ?? error
            }
        }
    }

    /// Every database call: bounded by the deadline; a full disk (SQLSTATE 53100) and a connection
    /// refused or lost (or a server shutting down, SQLSTATE class 57P) reported as such.
    private func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await deadline.run(operation)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "53100" {
            storageFull.record()
            throw StorageFault.full(database: deadline.database)
        } catch let error as PSQLError where Self.lostConnection(error) {
            throw StorageFault.unreachable(database: deadline.database, reason: Self.reason(error))
        }
    }

    private static func lostConnection(_ error: PSQLError) -> Bool {
        [.connectionError, .serverClosedConnection, .uncleanShutdown].contains(error.code)
            || error.serverInfo?[.sqlState]?.hasPrefix("57P") == true
    }

    static func bindings(now: Double, limit: Int, excluded: [String]? = nil, lease: Lease? = nil, silentSince: Double? = nil) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(now)
        bindings.append(limit)
        if let excluded { bindings.append(excluded) }
        if let lease {
            bindings.append(lease.owner)
            bindings.append(lease.expiresAt.timeIntervalSince1970)
        }
        if let silentSince { bindings.append(silentSince) }
        return bindings
    }

    /// Makes a statement run on its own (its own transaction) a repeatable write (see `RelayStore`): it
    /// commits without waiting for its WAL flush. One round trip, where BEGIN, SET LOCAL, the statement
    /// and COMMIT would be four. The setting holds for the statement's transaction only and is read at
    /// its commit; it is evaluated once (an InitPlan), and only when a row is claimed — a claim that
    /// writes nothing has nothing to flush.
    static let commitsWithoutFlush = "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"
}

extension PostgresRandomAccessRow: StoredRow {
    public func optionalText(_ column: String) throws -> String? { try self[column].decode(String?.self) }
    public func optionalReal(_ column: String) throws -> Double? { try self[column].decode(Double?.self) }
    public func optionalInteger(_ column: String) throws -> Int? { try self[column].decode(Int?.self) }
    public func optionalBlob(_ column: String) throws -> Data? { try self[column].decode(Data?.self) }
}
