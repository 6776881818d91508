import ArgumentParser
import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization
import Metrics
import Prometheus
import VeoRelay
import VeoRelayDevTools

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the relay: HTTP API, submitter, poller and webhook dispatcher in one process.",
        discussion: """
            With no configuration it listens on 127.0.0.1:8080, keeps its state in ./veo-relay.sqlite and, \
            without an upstream key, runs the built-in upstream simulator. SIGTERM or SIGINT stop it gracefully.
            """)

    @Option(help: "Address to listen on. [env: VEO_RELAY_HOST] (default: 127.0.0.1)")
    var host: String?

    @Option(help: "Port to listen on. [env: VEO_RELAY_PORT] (default: 8080)")
    var port: Int?

    @Option(help: "SQLite database file, or a postgres://user:password@host:5432/db?sslmode=verify-full&sslrootcert=ca.crt URL for several relays sharing one database. [env: VEO_RELAY_DATABASE] (default: veo-relay.sqlite)")
    var database: String?

    @Option(help: "A file holding the database location (a PostgreSQL URL with its password, e.g. a mounted secret). [env: VEO_RELAY_DATABASE_FILE]")
    var databaseFile: String?

    @Option(help: "How long any one database call may take before the request answers 503 (and a worker retries later); also PostgreSQL's statement timeout. [env: VEO_RELAY_DATABASE_TIMEOUT] (default: 5s)")
    var databaseTimeout: String?

    @Option(help: "Upstream base URL. [env: VEO_RELAY_UPSTREAM_URL] (default: \(RelayConfiguration.defaultUpstreamURL))")
    var upstreamURL: String?

    @Option(help: "Upstream API key; without one the built-in simulator is used. Prefer the variable: flags show in `ps`. [env: VEO_RELAY_UPSTREAM_API_KEY]")
    var upstreamAPIKey: String?

    @Option(help: "A file holding the upstream API key (e.g. a mounted secret). [env: VEO_RELAY_UPSTREAM_API_KEY_FILE]")
    var upstreamAPIKeyFile: String?

    @Flag(help: "Accept http:// callback URLs (default: https only). [env: VEO_RELAY_CALLBACK_ALLOW_HTTP=true]")
    var callbackAllowHTTP = false

    @Option(help: "A network callbacks may reach although it is private or loopback, e.g. 127.0.0.0/8; repeatable. [env: VEO_RELAY_CALLBACK_ALLOW_CIDRS, comma-separated]")
    var callbackAllowCIDR: [String] = []

    // Named explicitly: derived from the property, the flag would be `--check-image-ur-ls`.
    @Flag(name: .customLong("check-image-urls"),
          help: "Apply the callback address checks to first_frame_image and last_frame_image too. [env: VEO_RELAY_CHECK_IMAGE_URLS=true]")
    var checkImageURLs = false

    @Option(help: "Keep a copy of every finished video in this directory (a volume every instance on the database mounts) and serve it at /v1/tasks/{id}/videos/{index}; the upstream's URLs expire after a day. [env: VEO_RELAY_STORE_VIDEOS] (default: off)")
    var storeVideos: String?

    @Option(help: "Largest video the relay stores, in bytes. [env: VEO_RELAY_MAX_VIDEO_BYTES] (default: 536870912)")
    var maxVideoBytes: Int64?

    @Option(help: "How long a finished task's result may wait for its videos to be stored before it is announced with the upstream's URLs and a store_error. [env: VEO_RELAY_STORE_TIMEOUT] (default: 10m)")
    var storeTimeout: String?

    @Option(help: "How long stored videos are kept. [env: VEO_RELAY_VIDEO_RETENTION] (default: 30d)")
    var videoRetention: String?

    @Flag(name: .customLong("check-video-urls"),
          help: "Apply the callback address checks to the video URLs the relay downloads. [env: VEO_RELAY_CHECK_VIDEO_URLS=true]")
    var checkVideoURLs = false

    @Option(help: "API requests per second per client (bursts of twice that). [env: VEO_RELAY_RATE_LIMIT] (default: 20)")
    var rateLimit: Double?

    @Option(help: "Largest request body in bytes. [env: VEO_RELAY_MAX_BODY_BYTES] (default: 65536)")
    var maxBodyBytes: Int?

    @Option(help: "Longest prompt in characters. [env: VEO_RELAY_MAX_PROMPT_CHARS] (default: 20000)")
    var maxPromptChars: Int?

    @Option(help: "Largest metadata object in bytes of JSON. [env: VEO_RELAY_MAX_METADATA_BYTES] (default: 4096)")
    var maxMetadataBytes: Int?

    @Option(help: "Longest URL in bytes. [env: VEO_RELAY_MAX_URL_LENGTH] (default: 2048)")
    var maxURLLength: Int?

    @Option(name: .customLong("api-key"), help: "A relay API key clients must send as a Bearer token; repeatable. [env: VEO_RELAY_API_KEYS, comma-separated] (default: a generated key stored in the database)")
    var apiKeys: [String] = []

    @Option(help: "Webhook signing secret (whsec_…; or an Ed25519 key whsk_… for v1a signatures, or both space-separated) for the configured API keys. [env: VEO_RELAY_WEBHOOK_SECRET]")
    var webhookSecret: String?

    @Option(help: "Limits for the clients this relay creates, e.g. per_day=500,per_month=10000,video_seconds_per_day=4000,video_seconds_per_month=80000,in_flight=50; existing clients keep theirs (see `keys budget`). [env: VEO_RELAY_DEFAULT_BUDGET] (default: unlimited)")
    var defaultBudget: String?

    @Option(help: "Shortest gap between two polls of a task. [env: VEO_RELAY_POLL_FLOOR] (default: 1s)")
    var pollFloor: String?

    @Option(help: "Longest gap between two polls of a task. [env: VEO_RELAY_POLL_CEILING] (default: 60s)")
    var pollCeiling: String?

    @Option(help: "Poll every this often instead of adaptively (for comparison). [env: VEO_RELAY_POLL_FIXED_INTERVAL]")
    var pollFixedInterval: String?

    @Option(help: "Upstream request allowance in requests per second, shared by submissions and polls. [env: VEO_RELAY_UPSTREAM_RATE] (default: 10)")
    var upstreamRate: Double?

    @Option(help: "Upstream requests allowed in one burst. [env: VEO_RELAY_UPSTREAM_BURST] (default: the rate)")
    var upstreamBurst: Double?

    @Option(help: "Tasks in flight with the configured upstream key at most, across all relays (the account's concurrency; more keys: `upstream keys add`). [env: VEO_RELAY_UPSTREAM_MAX_IN_FLIGHT] (default: no limit)")
    var upstreamMaxInFlight: Int?

    @Option(help: "Longest a task may take before it fails with `timeout`. [env: VEO_RELAY_TASK_DEADLINE] (default: 3h; shorter for short estimates)")
    var taskDeadline: String?

    @Option(help: "Webhook retry delays, e.g. 0,5s,5m,30m,2h,5h,10h,10h. [env: VEO_RELAY_RETRY_SCHEDULE] (default: that one)")
    var retrySchedule: String?

    @Option(help: "Total timeout of one webhook attempt. [env: VEO_RELAY_DELIVERY_TIMEOUT] (default: 15s)")
    var deliveryTimeout: String?

    @Option(help: "Connect timeout of one webhook attempt. [env: VEO_RELAY_DELIVERY_CONNECT_TIMEOUT] (default: 5s)")
    var deliveryConnectTimeout: String?

    @Option(help: "Concurrent webhook attempts in all. [env: VEO_RELAY_DELIVERY_CONCURRENCY] (default: 32)")
    var deliveryConcurrency: Int?

    @Option(help: "Concurrent webhook attempts to one host:port. [env: VEO_RELAY_DESTINATION_CONCURRENCY] (default: 8)")
    var destinationConcurrency: Int?

    @Option(help: "Consecutive failures that open a destination's circuit. [env: VEO_RELAY_BREAKER_THRESHOLD] (default: 5)")
    var breakerThreshold: Int?

    @Option(help: "First cool-down of an open circuit; doubles per failed probe up to 10m. [env: VEO_RELAY_BREAKER_COOLDOWN] (default: 30s)")
    var breakerCooldown: String?

    @Option(help: "How long delivery attempt logs are kept. [env: VEO_RELAY_ATTEMPT_RETENTION] (default: 30d)")
    var attemptRetention: String?

    @Option(help: "Disable an endpoint whose every attempt has failed for this long (its client's other endpoints hear endpoint.disabled). [env: VEO_RELAY_ENDPOINT_DISABLE_AFTER] (default: 5d)")
    var endpointDisableAfter: String?

    @Option(help: "How long a claimed task or event stays owned by this instance before another may take it over. [env: VEO_RELAY_LEASE_DURATION] (default: 60s)")
    var leaseDuration: String?

    @Option(help: "How long an instance's heartbeat may be silent before its submissions in flight are judged lost (outcome unknown); longer than a database partition or failover lasts. [env: VEO_RELAY_OWNER_SILENCE_LIMIT] (default: 5m)")
    var ownerSilenceLimit: String?

    @Option(help: "How long a task waits while the upstream account refuses work (401, 402, 403 naming the balance or key) before it fails upstream_account_unavailable. [env: VEO_RELAY_ACCOUNT_HOLD_LIMIT] (default: 24h)")
    var accountHoldLimit: String?

    @Option(help: "On PostgreSQL, warn while this host's clock is further than this from the database's (the relay runs on the database's). [env: VEO_RELAY_CLOCK_OFFSET_WARNING] (default: 1s)")
    var clockOffsetWarning: String?

    @Option(help: "Total timeout of one upstream request. [env: VEO_RELAY_UPSTREAM_TIMEOUT] (default: 30s)")
    var upstreamTimeout: String?

    @Option(help: "How long SIGTERM/SIGINT may drain in-flight work before it is cut short; a second signal stops at once. [env: VEO_RELAY_DRAIN_TIMEOUT] (default: 25s)")
    var drainTimeout: String?

    @Option(help: "After SIGTERM/SIGINT, keep serving this long with /readyz failing before the server closes, so load balancers stop routing here first; part of the drain timeout. [env: VEO_RELAY_READINESS_GRACE] (default: 0s)")
    var readinessGrace: String?

    @Flag(help: "Serve the API and event streams only; other instances on the same database submit, poll and deliver. [env: VEO_RELAY_API_ONLY=true]")
    var apiOnly = false

    @Option(name: .customLong("cors-origin"), help: "A browser origin allowed to call the API (CORS), e.g. https://app.example.com; repeatable. [env: VEO_RELAY_CORS_ORIGINS, comma-separated] (default: none)")
    var corsOrigins: [String] = []

    @Option(help: "The relay's address as clients reach it, for the watch_url it hands out. [env: VEO_RELAY_PUBLIC_URL] (default: http://<the request's Host>)")
    var publicURL: String?

    @Option(help: "How long a watch_url works. [env: VEO_RELAY_WATCH_TOKEN_LIFETIME] (default: 6h)")
    var watchTokenLifetime: String?

    @Option(help: "Event streams one client may hold open at once; more get 429. [env: VEO_RELAY_MAX_STREAMS_PER_CLIENT] (default: 100)")
    var maxStreamsPerClient: Int?

    @Option(help: "Interval of the comment line that keeps idle event streams open through proxies. [env: VEO_RELAY_STREAM_HEARTBEAT] (default: 15s)")
    var streamHeartbeat: String?

    @Option(help: "Operator console sign-in token; without one /console is disabled. Prefer the variable or the file: flags show in `ps`. [env: VEO_RELAY_CONSOLE_TOKEN]")
    var consoleToken: String?

    @Option(help: "A file holding the console token. [env: VEO_RELAY_CONSOLE_TOKEN_FILE]")
    var consoleTokenFile: String?

    @Option(help: "Simulator only: multiply job durations by this factor. [env: VEO_RELAY_SIMULATOR_TIME_SCALE] (default: 0.1)")
    var simulatorTimeScale: Double?

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var tracing: TracingOptions

    func configuration() throws -> RelayConfiguration {
        var configuration = RelayConfiguration()
        configuration.host = host ?? Env.string("VEO_RELAY_HOST") ?? configuration.host
        configuration.port = try port ?? Env.value("VEO_RELAY_PORT") ?? configuration.port
        configuration.databasePath = try database ?? Env.string("VEO_RELAY_DATABASE")
            ?? Self.secret(fromFile: databaseFile ?? Env.string("VEO_RELAY_DATABASE_FILE"), named: "database URL") ?? configuration.databasePath
        if let timeout = try Env.duration(databaseTimeout, "VEO_RELAY_DATABASE_TIMEOUT") { configuration.databaseTimeout = .seconds(timeout) }
        let upstreamURL = upstreamURL ?? Env.string("VEO_RELAY_UPSTREAM_URL") ?? RelayConfiguration.defaultUpstreamURL
        if let key = try upstreamAPIKey ?? Env.string("VEO_RELAY_UPSTREAM_API_KEY")
            ?? Self.secret(fromFile: upstreamAPIKeyFile ?? Env.string("VEO_RELAY_UPSTREAM_API_KEY_FILE"), named: "upstream key") {
            configuration.upstream = .remote(url: upstreamURL, apiKey: key)
        } else {
            let scale = try simulatorTimeScale ?? Env.value("VEO_RELAY_SIMULATOR_TIME_SCALE") ?? 0.1
            configuration.upstream = .simulated(timeScale: scale)
        }
        configuration.apiKeys = apiKeys.isEmpty ? Env.list("VEO_RELAY_API_KEYS") : apiKeys
        configuration.callbacks.allowHTTP = callbackAllowHTTP || Env.flag("VEO_RELAY_CALLBACK_ALLOW_HTTP")
        configuration.callbacks.checkImageURLs = checkImageURLs || Env.flag("VEO_RELAY_CHECK_IMAGE_URLS")
        configuration.callbacks.addresses.allowed = try (callbackAllowCIDR.isEmpty ? Env.list("VEO_RELAY_CALLBACK_ALLOW_CIDRS") : callbackAllowCIDR)
            .map { text in
                guard let network = IPNetwork(text) else { throw ValidationError("'\(text)' is not a CIDR network such as 127.0.0.0/8") }
                return network
            }
        if let rate = try rateLimit ?? Env.value("VEO_RELAY_RATE_LIMIT", as: Double.self) {
            configuration.rateLimit.rate = rate
            configuration.rateLimit.burst = rate * 2
        }
        configuration.maxBodyBytes = try maxBodyBytes ?? Env.value("VEO_RELAY_MAX_BODY_BYTES") ?? configuration.maxBodyBytes
        configuration.limits.maxPromptCharacters = try maxPromptChars ?? Env.value("VEO_RELAY_MAX_PROMPT_CHARS") ?? configuration.limits.maxPromptCharacters
        configuration.limits.maxMetadataBytes = try maxMetadataBytes ?? Env.value("VEO_RELAY_MAX_METADATA_BYTES") ?? configuration.limits.maxMetadataBytes
        configuration.limits.maxURLLength = try maxURLLength ?? Env.value("VEO_RELAY_MAX_URL_LENGTH") ?? configuration.limits.maxURLLength
        configuration.webhookSecret = webhookSecret ?? Env.string("VEO_RELAY_WEBHOOK_SECRET")
        configuration.defaultBudget = try ClientBudget(parsing: defaultBudget ?? Env.string("VEO_RELAY_DEFAULT_BUDGET") ?? "")
        var videos = configuration.videos
        videos.directory = storeVideos ?? Env.string("VEO_RELAY_STORE_VIDEOS")
        videos.maxBytes = try maxVideoBytes ?? Env.value("VEO_RELAY_MAX_VIDEO_BYTES") ?? videos.maxBytes
        videos.timeout = try Env.duration(storeTimeout, "VEO_RELAY_STORE_TIMEOUT") ?? videos.timeout
        videos.retention = try Env.duration(videoRetention, "VEO_RELAY_VIDEO_RETENTION") ?? videos.retention
        videos.checkAddresses = checkVideoURLs || Env.flag("VEO_RELAY_CHECK_VIDEO_URLS")
        configuration.videos = videos
        var engine = configuration.engine
        engine.polling.floor = try Env.duration(pollFloor, "VEO_RELAY_POLL_FLOOR") ?? engine.polling.floor
        engine.polling.ceiling = try Env.duration(pollCeiling, "VEO_RELAY_POLL_CEILING") ?? engine.polling.ceiling
        if let fixed = try Env.duration(pollFixedInterval, "VEO_RELAY_POLL_FIXED_INTERVAL") { engine.polling.mode = .fixed(fixed) }
        engine.upstream.rate = try upstreamRate ?? Env.value("VEO_RELAY_UPSTREAM_RATE") ?? engine.upstream.rate
        engine.upstream.burst = try upstreamBurst ?? Env.value("VEO_RELAY_UPSTREAM_BURST") ?? engine.upstream.rate
        engine.configuredKeyMaxInFlight = try upstreamMaxInFlight ?? Env.value("VEO_RELAY_UPSTREAM_MAX_IN_FLIGHT")
        engine.deadlines.maximum = try Env.duration(taskDeadline, "VEO_RELAY_TASK_DEADLINE") ?? engine.deadlines.maximum
        engine.deadlines.minimum = min(engine.deadlines.minimum, engine.deadlines.maximum)
        if let text = retrySchedule ?? Env.string("VEO_RELAY_RETRY_SCHEDULE") {
            engine.retrySchedule = try RetrySchedule(parsing: text)
        }
        engine.deliveryTimeout = try Env.duration(deliveryTimeout, "VEO_RELAY_DELIVERY_TIMEOUT") ?? engine.deliveryTimeout
        engine.upstreamTimeout = try Env.duration(upstreamTimeout, "VEO_RELAY_UPSTREAM_TIMEOUT") ?? engine.upstreamTimeout
        engine.leaseDuration = try Env.duration(leaseDuration, "VEO_RELAY_LEASE_DURATION") ?? engine.leaseDuration
        engine.ownerSilenceLimit = try Env.duration(ownerSilenceLimit, "VEO_RELAY_OWNER_SILENCE_LIMIT") ?? engine.ownerSilenceLimit
        engine.accountHoldLimit = try Env.duration(accountHoldLimit, "VEO_RELAY_ACCOUNT_HOLD_LIMIT") ?? engine.accountHoldLimit
        engine.clockOffsetWarning = try Env.duration(clockOffsetWarning, "VEO_RELAY_CLOCK_OFFSET_WARNING") ?? engine.clockOffsetWarning
        engine.deliveryConnectTimeout = try Env.duration(deliveryConnectTimeout, "VEO_RELAY_DELIVERY_CONNECT_TIMEOUT") ?? engine.deliveryConnectTimeout
        engine.deliveryConcurrency = try deliveryConcurrency ?? Env.value("VEO_RELAY_DELIVERY_CONCURRENCY") ?? engine.deliveryConcurrency
        engine.destinations.maxConcurrent = try destinationConcurrency ?? Env.value("VEO_RELAY_DESTINATION_CONCURRENCY") ?? engine.destinations.maxConcurrent
        engine.destinations.failureThreshold = try breakerThreshold ?? Env.value("VEO_RELAY_BREAKER_THRESHOLD") ?? engine.destinations.failureThreshold
        engine.destinations.cooldown = try Env.duration(breakerCooldown, "VEO_RELAY_BREAKER_COOLDOWN") ?? engine.destinations.cooldown
        engine.attemptRetention = try Env.duration(attemptRetention, "VEO_RELAY_ATTEMPT_RETENTION") ?? engine.attemptRetention
        engine.endpointDisableAfter = try Env.duration(endpointDisableAfter, "VEO_RELAY_ENDPOINT_DISABLE_AFTER") ?? engine.endpointDisableAfter
        configuration.engine = engine
        configuration.drainTimeout = try Env.duration(drainTimeout, "VEO_RELAY_DRAIN_TIMEOUT") ?? configuration.drainTimeout
        configuration.readinessGrace = try Env.duration(readinessGrace, "VEO_RELAY_READINESS_GRACE") ?? configuration.readinessGrace
        configuration.apiOnly = apiOnly || Env.flag("VEO_RELAY_API_ONLY")
        var streams = configuration.streams
        streams.corsOrigins = corsOrigins.isEmpty ? Env.list("VEO_RELAY_CORS_ORIGINS") : corsOrigins
        streams.publicURL = publicURL ?? Env.string("VEO_RELAY_PUBLIC_URL")
        streams.watchTokenLifetime = try Env.duration(watchTokenLifetime, "VEO_RELAY_WATCH_TOKEN_LIFETIME") ?? streams.watchTokenLifetime
        streams.maxPerClient = try maxStreamsPerClient ?? Env.value("VEO_RELAY_MAX_STREAMS_PER_CLIENT") ?? streams.maxPerClient
        if let heartbeat = try Env.duration(streamHeartbeat, "VEO_RELAY_STREAM_HEARTBEAT") { streams.heartbeat = .seconds(heartbeat) }
        configuration.streams = streams
        configuration.consoleToken = try consoleToken ?? Env.string("VEO_RELAY_CONSOLE_TOKEN")
            ?? Self.secret(fromFile: consoleTokenFile ?? Env.string("VEO_RELAY_CONSOLE_TOKEN_FILE"), named: "console token")
        return configuration
    }

    /// A secret from a file (e.g. a mounted Kubernetes secret), trailing newline ignored.
    static func secret(fromFile path: String?, named name: String) throws -> String? {
        guard let path else { return nil }
        let secret: String
        do {
            secret = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw ValidationError("cannot read the \(name) file \(path): \(error.localizedDescription)")
        }
        guard !secret.isEmpty else { throw ValidationError("the \(name) file \(path) is empty") }
        return secret
    }

    /// Every start-up failure ends the process with a non-zero status and one line naming the cause;
    /// the banner appears only once the port is bound.
    func run() async throws {
        let logger = try logging.bootstrap(label: "veo-relay")
        let startup = StartupProgress()
        do {
            let configuration = try configuration()
            startup.address = "\(configuration.host):\(configuration.port)"
            let tracer = try tracing.bootstrap(logger: logger)
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let relay = try await buildRelay(configuration, logger: logger, metrics: registry, standIn: UpstreamSimulator.standIn) { port in startup.listening(on: port) }
            startup.banner = { port in Banner(configuration: configuration, relay: relay, port: port).text }
            let group = ServiceGroup(configuration: .init(services: Array(tracer.map { [$0] } ?? []) + [relay.application, relay.readinessWithdrawal],
                                                             logger: logger)
                .drained(within: configuration.drainTimeout))
            let signals = ShutdownSignals(group: group, drainTimeout: configuration.drainTimeout)
            try await group.run()
            withExtendedLifetime(signals) {}
        } catch {
            Console.error("veo-relay: \(startup.explain(error))")
            throw ExitCode.failure
        }
    }
}

extension ServiceGroupConfiguration {
    /// Escalates a graceful shutdown that takes longer than `drainTimeout` to cancellation.
    func drained(within drainTimeout: TimeInterval) -> Self {
        var configuration = self
        configuration.maximumGracefulShutdownDuration = .milliseconds(Int64(drainTimeout * 1000))
        return configuration
    }
}

/// What `serve` prints once listening: where, where state lives, and — loudly — when the upstream
/// is the simulator.
struct Banner {
    let configuration: RelayConfiguration
    let relay: Relay
    let port: Int

    var text: String {
        let rule = String(repeating: "=", count: 78)
        var lines = [rule, "veo-relay listening on http://\(configuration.host):\(port)",
                     "database: \(StoreLocation.display(configuration.databasePath)), \(StoreLocation.link(configuration.databasePath))"]
        switch configuration.upstream {
        case .remote:
            lines.append("upstream: \(relay.upstreamDescription)")
        case .simulated:
            lines += ["",
                      "!!! SIMULATED UPSTREAM — no VEO_RELAY_UPSTREAM_API_KEY is set. !!!",
                      "!!! Videos are fake and nothing is billed. Set the key to talk to the real API. !!!",
                      "upstream: \(relay.upstreamDescription)", ""]
        }
        let callbacks = configuration.callbacks
        let networks = callbacks.addresses.allowed.map(\.description)
        lines.append("callbacks: " + (callbacks.allowHTTP ? "https and http" : "https only (--callback-allow-http for http)") + "; "
            + (networks.isEmpty ? "public addresses only (--callback-allow-cidr 127.0.0.0/8 for webhooks on this machine)"
                : "public addresses and \(networks.joined(separator: ", "))"))
        let engine = configuration.engine
        lines.append("upstream allowance: \(engine.upstream.rate.formatted(.number.grouping(.never))) requests/s; up to \(engine.submitters) submissions and \(engine.pollers) polls in flight")
        if let directory = configuration.videos.directory {
            lines.append("stored videos: \(directory) (kept \(Int(configuration.videos.retention / 86_400)) days)")
            if configuration.streams.publicURL == nil {
                lines.append("  warning: no --public-url: stored_url names this listening address, which subscribers elsewhere cannot reach")
            }
        }
        switch relay.clients {
        case .configured(let count, let others):
            lines.append("clients: \(count) API key(s) from configuration, signing with VEO_RELAY_WEBHOOK_SECRET"
                + (others > 0 ? "; \(others) more stored in the database, whose keys authenticate too (`veo-relay keys list`)" : ""))
        case .stored(let count):
            lines.append("clients: \(count) stored in the database (their keys were shown when created)")
        case .created(let name, let apiKey, let secret):
            lines += ["created client '\(name)' — save these now, they are not shown again:",
                      "  API key (Authorization: Bearer …): \(apiKey)",
                      "  webhook signing secret:            \(secret)"]
        }
        lines.append(configuration.consoleToken == nil ? "console: off (set VEO_RELAY_CONSOLE_TOKEN to open it)"
            : "console: http://\(configuration.host):\(port)/console")
        lines.append(rule)
        return lines.joined(separator: "\n")
    }
}
