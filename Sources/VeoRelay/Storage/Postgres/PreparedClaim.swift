import PostgresNIO

/// A claim's text, as a type, so that each claim is its own named prepared statement.
protocol ClaimText: Sendable {
    /// The prepared statement's name (PostgreSQL keeps 63 bytes of it).
    static var name: String { get }
    static var sql: String { get }
}

/// A claim run as a named prepared statement: each connection parses it once and reuses its plan,
/// where an unnamed statement is parsed and planned at every claim (about a third of PostgreSQL's
/// time per claim, measured under the pipeline benchmark). Claims are the most frequent statements
/// the relay runs. (Behind a pooler in transaction mode, the pooler must keep prepared statements:
/// PgBouncer 1.21 or later with `max_prepared_statements`.)
struct PreparedClaim<Text: ClaimText>: PostgresPreparedStatement {
    typealias Row = PostgresRandomAccessRow
    static var name: String { "veo_relay_" + Text.name }
    static var sql: String { Text.sql }
    let bindings: PostgresBindings

    func makeBindings() -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) -> PostgresRandomAccessRow { row.makeRandomAccess() }
}

enum SubmissionClaimText: ClaimText {
    static let name = "submission_claim"
    static var sql: String { PostgresStore.claimStatement(.submission()) }
}

enum AccountProbeClaimText: ClaimText {
    static let name = "account_probe_claim"
    static var sql: String { PostgresStore.claimStatement(.accountProbe(.configured)) }
}

enum PollClaimText: ClaimText {
    static let name = "poll_claim"
    static var sql: String { PostgresStore.claimStatement(.poll) }
}

enum StoreClaimText: ClaimText {
    static let name = "store_claim"
    static var sql: String { PostgresStore.claimStatement(.store) }
}

enum DeliveryClaimText: ClaimText {
    static let name = "delivery_claim"
    static var sql: String { PostgresStore.deliveryClaimStatement }
}
