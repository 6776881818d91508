import Hummingbird

/// `/console` on a relay started without a console token: a page that says how to open it, where a
/// bare 404 would leave an operator guessing.
enum ConsoleOff {
    static let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>veo-relay console: off</title></head>
        <body style="font:14px system-ui,sans-serif;margin:2em"><h1>The veo-relay console is off</h1>
        <p>This relay was started without a console token. Start it with <code>VEO_RELAY_CONSOLE_TOKEN</code> (or
        <code>--console-token-file</code>, a file holding the token) set, then sign in here with that token.</p></body></html>
        """

    static func addRoutes(to router: Router<RelayRequestContext>) {
        for path in ["console", "console/**"] {
            router.get(RouterPath(path)) { _, _ in
                Response(status: .notFound, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                         body: .init(byteBuffer: ByteBuffer(string: page)))
            }
        }
    }
}
