import Hummingbird

/// CORS for the configured browser origins only (`--cors-origin`, repeatable; none by default), by
/// Hummingbird's `CORSMiddleware`: a request from any other origin, or with no `Origin`, passes through
/// untouched, so browsers on other sites get no access, and a preflight from another origin is refused
/// with a `403` that names the setting (no route answers `OPTIONS`). No cookies are allowed
/// cross-origin: a page reads a task with its watch token (or a client's API key), never with a session.
public struct AllowedOriginsCORS<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>
    let cors = CORSMiddleware<Context>(
        allowOrigin: .originBased,
        allowHeaders: [.accept, .authorization, .contentType, .init("Idempotency-Key")!, .init("Last-Event-ID")!],
        allowMethods: [.get, .post, .options],
        exposedHeaders: ["Idempotent-Replayed", "Retry-After"] + BudgetLimit.allCases.map { BudgetHeaders.name($0).rawName },
        maxAge: .seconds(600))

    public init(origins: [String]) {
        self.origins = Set(origins)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        if origins.contains(origin) { return try await cors.handle(request, context: context, next: next) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            throw APIError(.forbidden, type: "cors_refused", message: """
                The origin \(origin) may not call this relay from a browser; an operator allows it with --cors-origin \
                (VEO_RELAY_CORS_ORIGINS).
                """)
        }
        return try await next(request, context)
    }
}
