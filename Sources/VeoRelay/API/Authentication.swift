import Crypto
import Foundation
import Hummingbird
import Synchronization

/// Request context carrying who is calling: a client (API key) or the holder of a watch token.
public struct RelayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var client: Client?
    /// Set instead of `client` for a request authorised by a watch token: it may read one task only.
    public var watch: WatchToken?
    /// The address the request came from (a proxy's, behind one), for slowing guesses (`FailedAttempts`).
    public let peer: String

    public init(source: Source) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// The client; a watch token is not enough for anything that calls this.
    public func requireClient() throws -> Client {
        guard let client else { throw APIError.unauthorized }
        return client
    }

    /// Whose task `taskID` the caller may read: the client's own, or the one task of its watch token.
    public func readableOwner(ofTask taskID: String) throws -> String {
        if let client { return client.id }
        guard let watch else { throw APIError.unauthorized }
        guard watch.taskID == taskID else { throw APIError.notFound("No task '\(taskID)'.") }
        return watch.clientID
    }

    /// The client a request counts against (rate and stream limits), however it was authorised.
    public var accountID: String? { client?.id ?? watch?.clientID }
}

/// API keys are stored and looked up only as SHA-256 hashes.
public enum APIKey {
    public static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).hexString
    }

    /// A new random key: `vr_` + 40 hex characters.
    public static func generate() -> String {
        "vr_" + Identifier.randomHex(bytes: 20)
    }
}

/// Resolves `Authorization: Bearer <key>` to a client, or answers 401 (429 to an address that keeps
/// failing: `FailedAttempts`; a valid key is always let in, so clients behind one proxy with a guesser
/// are not locked out, and 160 random bits are not guessed by any rate anyway). A key found is remembered for
/// `remembered` (so a revocation, in this or another instance, takes effect within that time) instead
/// of reading the database on every request; unknown keys are never remembered. Without the header,
/// a `watch_token` query parameter (what a browser's `EventSource` can send) authorises reading one task.
public struct BearerAuthenticator: RouterMiddleware {
    public typealias Context = RelayRequestContext
    let store: any ClientDirectory
    let watchTokens: WatchTokenSigner
    let clock: any WallClock
    /// Unknown keys and invalid watch tokens, counted per address.
    let failures: FailedAttempts
    private let known = KnownClients()

    public init(store: any ClientDirectory, watchTokens: WatchTokenSigner, clock: any WallClock, failures: FailedAttempts) {
        self.store = store
        self.watchTokens = watchTokens
        self.clock = clock
        self.failures = failures
    }

    static let watchTokenParameter = "watch_token"

    func client(keyHash: String) async throws -> Client? {
        if let client = known.client(keyHash: keyHash) { return client }
        guard let client = try await store.client(keyHash: keyHash) else { return nil }
        known.remember(client, keyHash: keyHash)
        return client
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.headers[.authorization] == nil, let token = request.uri.queryParameters.get(Self.watchTokenParameter) {
            var context = context
            do {
                context.watch = try watchTokens.verify(token, now: clock.now())
            } catch {
                try failures.refuse(context.peer)
                throw APIError(.unauthorized, type: "authentication_error",
                               message: error == .expired ? "The watch token has expired." : "The watch token is invalid.",
                               param: Self.watchTokenParameter)
            }
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { throw APIError.unauthorized }
        let key = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty, let client = try await client(keyHash: APIKey.hash(key)) else {
            try failures.refuse(context.peer)
            throw APIError.unauthorized
        }
        var context = context
        context.client = client
        return try await next(request, context)
    }
}

/// Clients recently found by key hash, each for `lifetime`; bounded, so it is emptied when full.
final class KnownClients: Sendable {
    static let lifetime: Duration = .seconds(2)
    static let capacity = 10_000
    private let entries = Mutex<[String: (client: Client, until: ContinuousClock.Instant)]>([:])

    func client(keyHash: String) -> Client? {
        guard let entry = entries.withLock({ $0[keyHash] }), entry.until > .now else { return nil }
        return entry.client
    }

    func remember(_ client: Client, keyHash: String) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[keyHash] = (client, .now + Self.lifetime)
        }
    }
}
