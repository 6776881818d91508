import Foundation

/// Where the relay sends generations.
public enum UpstreamMode: Sendable, CustomStringConvertible {
    /// The real gateway.
    case remote(url: String, apiKey: String)
    /// The built-in simulator (`UpstreamStandIn`), served by the relay itself under `/simulator`, its
    /// jobs' durations multiplied by `timeScale`.
    case simulated(timeScale: Double)

    public var description: String {
        switch self {
        case .remote(let url, _): "remote(\(url))"
        case .simulated(let timeScale): "simulated(time scale \(timeScale))"
        }
    }
}

/// Event streams and browser access to them.
public struct StreamPolicy: Sendable {
    /// How often the store is asked for events another instance wrote (this instance's own arrive at once).
    public var pollInterval: Duration = .milliseconds(500)
    /// A comment line this often keeps proxies from closing an idle stream.
    public var heartbeat: Duration = .seconds(15)
    public var maxPerClient = 100
    /// How long a `watch_url` works.
    public var watchTokenLifetime: TimeInterval = 6 * 3_600
    /// Browser origins allowed to call the API (CORS); none by default.
    public var corsOrigins: [String] = []
    /// The relay's address as clients reach it, for `watch_url`; the request's `Host` otherwise.
    public var publicURL: String?

    public init() {}
}

/// Everything `serve` can be told. Defaults are the embedded setup: loopback, a SQLite file in the
/// working directory, and the simulator when no upstream key is configured.
public struct RelayConfiguration: Sendable, CustomStringConvertible {
    public static let defaultUpstreamURL = "https://xcompute.us"

    public var host = "127.0.0.1"
    public var port = 8080
    public var databasePath = "veo-relay.sqlite"
    /// The longest any one database call may take (see `StoreDeadline`).
    public var databaseTimeout = StoreDeadline.defaultLimit
    public var upstream: UpstreamMode = .simulated(timeScale: 0.1)
    /// Relay API keys; empty means "use (or create) the clients stored in the database".
    public var apiKeys: [String] = []
    /// Signs webhooks for `apiKeys`; required when they are set.
    public var webhookSecret: String?
    /// The limits a client gets when the relay creates it (existing clients keep their own).
    public var defaultBudget = ClientBudget.unlimited
    public var engine = EngineConfiguration()
    public var limits = RequestLimits()
    public var maxBodyBytes = 64 * 1024
    /// The SSRF guard for callback (and optionally image) URLs.
    public var callbacks = CallbackGuard.Policy()
    /// Per-client API request rate.
    public var rateLimit = RateLimitMiddleware.Policy()
    /// How many failed authentications (API keys, watch tokens, the console token) one address may make
    /// before its attempts are refused for a while.
    public var failedAttempts = FailedAttempts.Policy()
    /// How long a graceful stop may drain in-flight work before it is cut short (`serve`).
    public var drainTimeout: TimeInterval = 25
    /// How long a graceful stop keeps serving with `/readyz` failing before the server closes, so that
    /// load balancers stop routing here first (`serve`; part of the drain timeout).
    public var readinessGrace: TimeInterval = 0
    public var streams = StreamPolicy()
    /// Copies of finished videos (`--store-videos`); off unless a directory is set.
    public var videos = VideoStorePolicy()
    /// Serve the API and event streams only, leaving submission, polling and delivery to the other
    /// instances on the same database (e.g. stream front ends).
    public var apiOnly = false
    /// The operator console's sign-in token; nil leaves `/console` disabled.
    public var consoleToken: String?
    /// Names this process in leases, so several relays can share one database.
    public var instanceID = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(Identifier.make(prefix: "").suffix(6))"

    public init() {}

    /// Everything but the secrets.
    public var description: String {
        "RelayConfiguration(\(host):\(port), database \(databasePath), upstream \(upstream), \(apiKeys.count) API key(s))"
    }

    /// Whether only this machine can reach the server (console cookies may then go without `Secure`).
    var listensOnLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The address the relay reaches itself on, for the in-process simulator.
    func loopbackBaseURL(port: Int) -> String {
        let host = switch self.host {
        case "0.0.0.0", "": "127.0.0.1"
        case "::": "[::1]"
        case let host where host.contains(":"): "[\(host)]"
        case let host: host
        }
        return "http://\(host):\(port)"
    }
}
