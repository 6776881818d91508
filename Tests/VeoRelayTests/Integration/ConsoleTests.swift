import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
@testable import VeoRelay

/// The operator console over loopback, as a browser without scripts would use it: cookies, forms,
/// redirects followed by hand so that each answer can be checked.
@Suite("Operator console", .stopsWhatItStarts)
struct ConsoleTests {
    static let token = "console-test-token-0123456789"

    /// A cookie jar and a client that does not follow redirects.
    final class Browser: Sendable {
        struct Page {
            var status: Int
            var headers: [(String, String)]
            var html: String

            func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
            var setCookies: [String] { headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1) }
            func field(_ name: String) -> String? {
                guard let range = html.range(of: #"name="\#(name)" value="([^"]*)""#, options: .regularExpression) else { return nil }
                return String(html[range].dropFirst("name=\"\(name)\" value=\"".count).dropLast())
            }
        }

        let base: String
        let jar = Mutex<[String: String]>([:])
        static let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

        init(base: String) { self.base = base }

        func get(_ path: String) async throws -> Page { try await send(.GET, path, form: nil) }

        func post(_ path: String, _ form: [String: String]) async throws -> Page { try await send(.POST, path, form: form) }

        private func send(_ method: HTTPMethod, _ path: String, form: [String: String]?) async throws -> Page {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            let cookies = jar.withLock { $0.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
            if !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies) }
            if let form {
                var components = URLComponents()
                components.queryItems = form.map { URLQueryItem(name: $0.key, value: $0.value) }
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: components.percentEncodedQuery ?? ""))
            }
            let response = try await Self.http.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            let page = Page(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, html: String(buffer: body))
            for cookie in page.setCookies {
                let pair = cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
                jar.withLock { $0[pair[0]] = pair.count > 1 && !pair[1].isEmpty ? pair[1] : nil }
            }
            return page
        }

        /// Signs in with `token`; returns the sign-in POST's answer.
        func signIn(_ token: String = ConsoleTests.token) async throws -> Page {
            let form = try await get("/console/sign-in")
            return try await post("/console/sign-in", ["token": token, "nonce": form.field("nonce") ?? ""])
        }
    }

    static func consoleRelay(_ harness: RelayHarness) async throws -> RunningServer {
        try await harness.startRelay { $0.consoleToken = Self.token }
    }

    @Test func withoutATokenTheConsoleSaysHowToOpenIt() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        for path in ["/console", "/console/tasks"] {
            let page = try await Browser(base: relay.baseURL).get(path)
            #expect(page.status == 404)
            #expect(page.html.contains("console is off") && page.html.contains("VEO_RELAY_CONSOLE_TOKEN"), "\(path): \(page.html)")
        }
        #expect(try await APIClient(baseURL: relay.baseURL).post("/console/pause", json: .object([:])).status >= 400, "nothing behind it")
        try await harness.stop(relay)
    }

    @Test func signingInTakesTheTokenAndSetsAStrictHttpOnlyCookie() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await Self.consoleRelay(harness)
        let browser = Browser(base: relay.baseURL)
        let away = try await browser.get("/console/tasks")
        #expect(away.status == 303 && away.header("location") == "/console/sign-in")

        let wrong = try await browser.signIn("not-the-console-token")
        #expect(wrong.status == 303 && wrong.header("location") == "/console/sign-in?failed=1")
        #expect(try await browser.get("/console/tasks").status == 303, "still signed out")
        let forged = try await Browser(base: relay.baseURL).post("/console/sign-in", ["token": Self.token, "nonce": "guessed"])
        #expect(forged.status == 403, "a sign-in form that was not served by the relay")

        let signedIn = try await browser.signIn()
        #expect(signedIn.status == 303 && signedIn.header("location") == "/console")
        let session = try #require(signedIn.setCookies.first { $0.hasPrefix("veo_console=") })
        #expect(session.contains("HttpOnly") && session.contains("SameSite=Strict"))
        #expect(!session.contains("Secure"), "served on loopback, so the cookie works over plain http")
        let tasks = try await browser.get("/console/tasks")
        #expect(tasks.status == 200)
        #expect(tasks.header("content-security-policy")?.contains("default-src 'none'") == true)

        // Signing out needs the form's CSRF token too.
        #expect(try await browser.post("/console/sign-out", [:]).status == 403)
        #expect(try await browser.post("/console/sign-out", ["csrf": tasks.field("csrf") ?? ""]).status == 303)
        #expect(try await browser.get("/console/tasks").status == 303)
        try await harness.stop(relay)
    }

    /// Every console route but sign-in is behind the door: without a session a page sends the operator to
    /// sign in and a form changes nothing; with one, a form without its CSRF token is refused.
    @Test func everyPageButSignInIsBehindTheDoor() async throws {
        let harness = try await RelayHarness.start()
        var configuration = harness.configuration
        configuration.databasePath = harness.databasePath
        configuration.consoleToken = Self.token
        let routes = Mutex<[String]>([])
        let server = try await RunningServer.start { onRunning in
            let relay = try await buildRelay(configuration, logger: TestLog.logger, onServerRunning: onRunning)
            routes.withLock { $0 = relay.routes }
            return relay.application
        }
        let pages = routes.withLock { $0 }.compactMap { route -> (method: String, path: String)? in
            let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts[1].hasPrefix("/console"), !parts[1].hasSuffix("/sign-in") else { return nil }
            return (parts[0], parts[1].split(separator: "/").map { $0.hasPrefix(":") ? "x" : $0 }.joined(separator: "/"))
        }
        #expect(pages.count >= 15, "\(pages)")
        let stranger = Browser(base: server.baseURL)
        let operator_ = Browser(base: server.baseURL)
        #expect(try await operator_.signIn().status == 303)
        for page in pages {
            let path = "/" + page.path
            let away = page.method == "GET" ? try await stranger.get(path) : try await stranger.post(path, ["csrf": "x"])
            #expect(away.status == 303 && away.header("location") == "/console/sign-in", "\(page.method) \(path) without a session")
            if page.method == "POST" {
                #expect(try await operator_.post(path, ["csrf": "forged"]).status == 403, "POST \(path) without its CSRF token")
            }
        }
        try await server.stop()
        try await harness.stop()
    }

    @Test func aDeadLetterIsReplayedFromTheConsoleWithTheSameWebhookID() async throws {
        let failing = Atomic(true)
        let harness = try await RelayHarness.start(receiverAnswer: { _ in .init(status: failing.load(ordering: .relaxed) ? .internalServerError : .ok) })
        let relay = try await Self.consoleRelay(harness)
        let api = APIClient(baseURL: relay.baseURL)
        let taskID = try await api.submit(harness.request())
        try await eventually("the delivery to be dead-lettered") {
            try await api.get("/v1/tasks/\(taskID)").json["data"]?["callback"]?["state"] == .string("failed")
        }
        let browser = Browser(base: relay.baseURL)
        _ = try await browser.signIn()
        let deadLetters = try await browser.get("/console/dead-letters")
        #expect(deadLetters.html.contains(taskID))
        let csrf = try #require(deadLetters.field("csrf"))
        let eventID = try #require(deadLetters.field("event"))
        #expect(try await browser.post("/console/tasks/\(taskID)/replay", ["event": eventID]).status == 403, "no CSRF token")
        #expect(try await browser.post("/console/tasks/\(taskID)/replay", ["event": eventID, "csrf": "forged"]).status == 403)
        #expect(harness.receiver.all.count == 4, "the retries were used up, nothing replayed yet")

        failing.store(false, ordering: .relaxed)
        let replayed = try await browser.post("/console/tasks/\(taskID)/replay", ["event": eventID, "csrf": csrf])
        #expect(replayed.status == 303)
        let delivery = try await harness.receiver.next(5).last
        #expect(delivery?.id == eventID)
        try await eventually("the console to show it delivered") {
            try await browser.get("/console/tasks/\(taskID)").html.contains(#"class="state-delivered delivery-state" data-event="\#(eventID)""#)
        }
        #expect(try await browser.get("/console/dead-letters").html.contains("No dead letters."))
        try await harness.stop(relay)
    }

    @Test func theTaskListPagesNewestFirstAndFilters() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await Self.consoleRelay(harness)
        let mine = APIClient(baseURL: relay.baseURL), other = APIClient(baseURL: relay.baseURL, key: RelayHarness.otherAPIKey)
        var ids: [String] = []
        for index in 0..<52 { ids.append(try await mine.submit(harness.request(prompt: "page \(index)"))) }
        let foreign = try await other.submit(harness.request(prompt: "another client's"))
        let browser = Browser(base: relay.baseURL)
        _ = try await browser.signIn()
        func listed(_ page: Browser.Page) -> [String] {
            page.html.components(separatedBy: "href=\"/console/tasks/").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        }
        let first = try await browser.get("/console/tasks")
        #expect(listed(first) == [foreign] + ids.reversed().prefix(49), "newest first, 50 a page")
        let link = try #require(first.html.range(of: #"id="older" href="[^"]+""#, options: .regularExpression))
        let older = String(first.html[link].dropFirst(#"id="older" href=""#.count).dropLast()).replacingOccurrences(of: "&amp;", with: "&")
        #expect(listed(try await browser.get(older)) == Array(ids.reversed().dropFirst(49)), "the rest on the next page")
        let filtered = try await browser.get("/console/tasks?client=\(RelayHarness.clientID)")
        #expect(!listed(filtered).contains(foreign) && listed(filtered).count == 50)
        #expect(listed(try await browser.get("/console/tasks?state=cancelled")).isEmpty)
        try await harness.stop(relay)
    }

    @Test func hostileTextRendersAsTextAndNoSecretIsEverShown() async throws {
        let harness = try await RelayHarness.start()
        let storedKey = "sk-console-stored-9999"
        try await UpstreamKeyTests.add([UpstreamKey(name: "spare", secret: storedKey, maxInFlight: 3, createdAt: Date())], to: harness)
        let relay = try await Self.consoleRelay(harness)
        let hostile = "<script>alert('prompt')</script>"
        let taskID = try await APIClient(baseURL: relay.baseURL).submit(harness.request(prompt: "a fox " + hostile, extra: [
            "metadata": .object(["note": .string("<img src=x onerror=alert(1)>")])]))
        let browser = Browser(base: relay.baseURL)
        _ = try await browser.signIn()
        var pages: [String] = []
        for path in ["/console/tasks", "/console/tasks/\(taskID)", "/console/dead-letters", "/console/clients", "/console/upstream", "/console"] {
            let page = try await browser.get(path)
            #expect(page.status == 200, "\(path)")
            pages.append(page.html)
        }
        let all = pages.joined()
        #expect(!all.contains("<script"), "no markup from a prompt reaches the page")
        #expect(!all.contains("<img src=x"))
        #expect(pages[1].contains("&lt;script&gt;alert(&#39;prompt&#39;)&lt;/script&gt;") || pages[1].contains("&lt;script&gt;"))
        #expect(pages[1].contains("&lt;img src=x onerror=alert(1)&gt;"))
        #expect(pages[3].contains(RelayHarness.clientID), "clients are listed")
        #expect(pages[4].contains("spare (…9999)") && pages[4].contains("takes work"), "upstream keys by name and last four characters")
        for secret in [RelayHarness.apiKey, RelayHarness.secret, String(RelayHarness.secret.dropFirst("whsec_".count)), Self.token,
                       RelayHarness.upstreamKey, storedKey] {
            #expect(!all.contains(secret), "a secret on a console page")
        }
        try await harness.stop(relay)
    }

    /// The landing page draws the last hour and day from the database; the list shows each task's
    /// webhook state and finds a task by a metadata value; the stop switch and cancel work as forms.
    @Test func theOverviewChartsTheRunAndTheListSearchesAndTheSwitchesWork() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await Self.consoleRelay(harness)
        let api = APIClient(baseURL: relay.baseURL)
        let found = try await api.submit(harness.request(prompt: "with an order number", extra: ["metadata": .object(["order": .string("A-7731")])]))
        _ = try await api.submit(harness.request(prompt: "fails [simulate:fail]"))
        _ = try await harness.receiver.next(2)
        try await eventually("both webhooks recorded as delivered") {
            let log = try await api.get("/v1/tasks/\(found)").json["data"]?["callback"]?["state"]
            return log == .string("delivered")
        }
        let browser = Browser(base: relay.baseURL)
        _ = try await browser.signIn()
        let overview = try await browser.get("/console")
        #expect(overview.status == 200)
        #expect(overview.html.components(separatedBy: "<svg class='chart'").count - 1 == 8, "four charts for the hour, four for the day")
        #expect(overview.html.contains("Tasks per minute") && overview.html.contains("Notification lag"))
        #expect(overview.html.contains("<polyline class='series'") || overview.html.contains("<circle class='series'"), "the run is drawn")
        #expect(overview.html.contains("Running for every client."))

        let search = try await browser.get("/console/tasks?q=A-7731")
        #expect(search.html.contains(found) && search.html.components(separatedBy: "href=\"/console/tasks/").count - 1 == 1, "found by metadata")
        #expect(try await browser.get("/console/tasks?q=\(found)").html.contains(found), "found by id")
        #expect(!(try await browser.get("/console/tasks?q=B-0000").html.contains(found)))
        #expect(search.html.contains(#"<td class="state-delivered">delivered</td>"#), "the webhook's state in the list")

        let csrf = try #require(overview.field("csrf"))
        #expect(try await browser.post("/console/pause", ["client": ""]).status == 403, "no CSRF token")
        #expect(try await browser.post("/console/pause", ["client": "", "csrf": csrf]).status == 303)
        #expect(try await browser.get("/console").html.contains("Paused for all clients"))
        let waiting = try await api.submit(harness.request(prompt: "waits behind the switch"))
        let taskPage = try await browser.get("/console/tasks/\(waiting)")
        #expect(taskPage.html.contains(#"id="cancel""#), "a queued task can be cancelled")
        #expect(try await browser.post("/console/tasks/\(waiting)/cancel", ["csrf": csrf]).status == 303)
        #expect(try await api.get("/v1/tasks/\(waiting)").json["data"]?["status"] == .string("cancelled"))
        #expect(try await browser.post("/console/resume", ["client": "", "csrf": csrf]).status == 303)
        #expect(try await browser.get("/console").html.contains("Running for every client."))
        #expect(harness.simulator.submissionsByPrompt["waits behind the switch"] == nil, "cancelled while paused: never submitted")
        try await harness.stop(relay)
    }

    @Test func theUsagePageChartsAClientsDaysBesideItsBudget() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await Self.consoleRelay(harness)
        let api = APIClient(baseURL: relay.baseURL)
        for prompt in ["one", "two"] { _ = try await api.submit(harness.request(prompt: prompt)) }
        _ = try await harness.receiver.next(2) // both ended: their outcomes are counted
        try await BudgetTests.setBudget("per_day=10,in_flight=5", in: harness)
        let browser = Browser(base: relay.baseURL)
        _ = try await browser.signIn()

        let clients = try await browser.get("/console/clients")
        #expect(clients.html.contains("<td>per_day=10,in_flight=5</td>"), "the budget is listed with its client")
        #expect(clients.html.contains("href=\"/console/usage?client=\(RelayHarness.clientID)\""))
        let usage = try await browser.get("/console/usage?client=\(RelayHarness.clientID)")
        #expect(usage.status == 200)
        #expect(usage.html.contains("Generations per UTC day"))
        #expect(usage.html.components(separatedBy: "<rect class='bar'").count - 1 == 1, "one day with generations, none cancelled")
        #expect(usage.html.contains("<tr><th>per_day</th><td>2 of 10 (8 left)</td></tr>"), "\(usage.html)")
        #expect(usage.html.contains("<tr><th>in_flight</th><td>0 of 5 (5 left)</td></tr>"))
        #expect(usage.html.contains("<tr><td>veo3.1-fast-official</td><td>2</td><td>16</td><td>2</td><td>0</td><td>0</td></tr>"))
        let everyone = try await browser.get("/console/usage")
        #expect(everyone.html.contains("all clients, last 30 days") && !everyone.html.contains("id=\"budget\""))
        try await harness.stop(relay)
    }
}
