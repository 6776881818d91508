import Foundation
import Hummingbird

/// Sign-in with the operator token (a form whose nonce matches a cookie set with it), and sign-out.
struct SignInPage: Sendable {
    let sessions: ConsoleSessions
    let pages: ConsolePages
    /// Wrong tokens, counted per address: guessing is slowed.
    let failures: FailedAttempts

    func addRoutes(outside: RouterGroup<ConsoleRequestContext>, inside: RouterGroup<ConsoleRequestContext>) {
        outside.get("sign-in", use: form)
        outside.post("sign-in", use: signIn)
        inside.post("sign-out", use: signOut)
    }

    @Sendable func form(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let (nonce, cookie) = sessions.newSignInNonce()
        var response = pages.page("Sign in to the veo-relay console", "signin", SignInView(nonce: nonce, failed: request.uri.queryParameters.get("failed") != nil),
                                  signedIn: nil)
        response.setCookie(cookie)
        return response
    }

    @Sendable func signIn(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        var request = request
        let form = try await ConsolePages.form(SignInForm.self, &request)
        guard sessions.checkSignInNonce(form.nonce, request) else { return pages.formExpired() }
        if let wait = failures.lockedOut(context.parent.peer) { throw FailedAttempts.refusal(retryAfter: wait, what: failures.what) }
        guard sessions.accepts(token: form.token ?? "") else {
            failures.failed(context.parent.peer)
            context.logger.notice("console sign-in refused", metadata: ["address": "\(context.parent.peer)"])
            return ConsolePages.redirect("/console/sign-in?failed=1")
        }
        let (_, cookie) = sessions.newSession()
        var response = ConsolePages.redirect("/console")
        response.setCookie(cookie)
        response.setCookie(sessions.expired(ConsoleSessions.signInCookie))
        context.logger.info("console sign-in")
        return response
    }

    @Sendable func signOut(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        var response = ConsolePages.redirect("/console/sign-in")
        response.setCookie(sessions.expired(ConsoleSessions.sessionCookie))
        return response
    }
}

struct SignInForm: Decodable {
    var token: String?
    var nonce: String?
}

struct SignInView {
    var nonce: String
    var failed: Bool
}
