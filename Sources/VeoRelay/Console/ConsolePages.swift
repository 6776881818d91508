import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// How every console page is answered: rendered into the layout with the console's security headers,
/// redirects, and forms read from a request.
struct ConsolePages: Sendable {
    let templates: MustacheLibrary

    init() throws {
        templates = try ConsoleTemplates.library()
    }

    /// Security headers for every console page: no scripts, no framing, no caching, no referrer.
    static let headers: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        // Media from the relay itself only: the task page plays stored videos, still without any script.
        .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; media-src 'self'; form-action 'self'; frame-ancestors 'none'",
        HTTPField.Name("X-Frame-Options")!: "DENY", HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
    ]

    /// `template` rendered from `view` inside the layout; `signedIn` (nil on the sign-in page) adds the
    /// navigation and the sign-out form.
    func page(_ title: String, _ template: String?, _ view: Any, signedIn: SignedInOperator?, status: HTTPResponse.Status = .ok,
              notice: String? = nil) -> Response {
        let content = template.flatMap { templates.render(view, withTemplate: $0) } ?? ""
        let layout = LayoutView(title: title, content: content, signedIn: signedIn != nil, csrf: signedIn?.csrf ?? "", notice: notice)
        let html = templates.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: Self.headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func notFound(_ title: String, signedIn: SignedInOperator) -> Response {
        page(title, nil, Empty(), signedIn: signedIn, status: .notFound)
    }

    func formExpired() -> Response {
        page("The form has expired", nil, Empty(), signedIn: nil, status: .forbidden, notice: "Reload the page and try again.")
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// Back to `path` with `notice` shown at the top.
    static func redirect(_ path: String, notice: String) -> Response {
        redirect(path + "?notice=" + (notice.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
    }

    /// The request's form; its body stays readable for whoever reads it next.
    static func form<Form: Decodable>(_ type: Form.Type, _ request: inout Request) async throws -> Form {
        let body = try await request.collectBody(upTo: 16 * 1024)
        do {
            return try URLEncodedFormDecoder().decode(Form.self, from: String(buffer: body))
        } catch {
            throw APIError.invalidRequest("The form could not be read.")
        }
    }

    static func time(_ date: Date?) -> String {
        date.map { $0.formatted(.iso8601) } ?? ""
    }
}

/// A state-changing form: its CSRF token and, for Replay, the event; for the stop switch, the client.
struct ActionForm: Decodable, Sendable {
    var csrf: String?
    var event: String?
    /// `callback` or an endpoint id: the one destination a replay goes to.
    var destination: String?
    var client: String?
}

struct Empty {}

struct NamedValue {
    var name: String
    var value: String
}

struct LayoutView {
    var title: String
    var content: String
    var signedIn: Bool
    var csrf: String
    var notice: String?
}
