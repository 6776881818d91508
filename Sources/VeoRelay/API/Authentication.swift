import Crypto
import Foundation
import Hummingbird

/// Request context carrying the authenticated client.
public struct RelayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var client: Client?

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    public func requireClient() throws -> Client {
        guard let client else { throw APIError.unauthorized }
        return client
    }
}

/// API keys are stored and looked up only as SHA-256 hashes.
public enum APIKey {
    public static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A new random key: `vr_` + 40 hex characters.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return "vr_" + (0..<20).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

/// Resolves `Authorization: Bearer <key>` to a client, or answers 401.
public struct BearerAuthenticator: RouterMiddleware {
    public typealias Context = RelayRequestContext
    let store: any Store

    public init(store: any Store) {
        self.store = store
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { throw APIError.unauthorized }
        let key = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty, let client = try await store.client(keyHash: APIKey.hash(key)) else { throw APIError.unauthorized }
        var context = context
        context.client = client
        return try await next(request, context)
    }
}
