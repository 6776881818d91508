import Foundation
import Hummingbird

/// A console request's context: the parent's, and behind the door the operator who signed in.
public struct ConsoleRequestContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The context the request came with, for what serves the API's requests too (stored videos).
    let parent: RelayRequestContext
    /// Set by `ConsoleDoor` on every page behind it.
    var admitted: SignedInOperator?

    public init(context: RelayRequestContext) {
        coreContext = context.coreContext
        parent = context
    }

    /// The signed-in operator; only pages behind the door ask, and the door lets no one else through.
    var signedIn: SignedInOperator {
        get throws {
            guard let admitted else { throw APIError.unauthorized }
            return admitted
        }
    }
}

/// Who passed the door: the CSRF token their session's forms carry, and a form posted with it.
struct SignedInOperator: Sendable {
    var csrf: String
    /// The posted form, its CSRF token already checked (nil for a page read).
    var form: ActionForm?
}

/// The one check in front of every console page but sign-in: a valid session, and for a POST a form
/// whose CSRF token matches it. Without a session the operator is sent to sign in; a form without
/// the right token is refused before any handler runs.
struct ConsoleDoor: RouterMiddleware {
    let sessions: ConsoleSessions
    let pages: ConsolePages

    func handle(_ request: Request, context: ConsoleRequestContext,
                next: (Request, ConsoleRequestContext) async throws -> Response) async throws -> Response {
        guard let session = sessions.session(request) else { return ConsolePages.redirect("/console/sign-in") }
        var request = request
        var context = context
        var form: ActionForm?
        if request.method == .post {
            form = try await ConsolePages.form(ActionForm.self, &request)
            guard sessions.checkCSRF(form?.csrf, for: session) else { return pages.formExpired() }
        }
        context.admitted = SignedInOperator(csrf: sessions.csrfToken(for: session), form: form)
        return try await next(request, context)
    }
}
