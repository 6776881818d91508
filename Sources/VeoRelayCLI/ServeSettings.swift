import ArgumentParser
import VeoRelay

/// One setting of `serve`, declared once: its environment variable, what it does and its default as
/// help shows them. `Serve` takes each flag's help from here and reads each variable through the same
/// entry, so `--help` (and docs/configuration.md, which a test holds to it) names what is read.
struct ServeSetting: Sendable {
    let variable: String
    let summary: String
    /// After the variable's name: `=true` for a switch, `, comma-separated` for a list.
    let note: String
    let defaultText: String?

    init(_ variable: String, _ summary: String, note: String = "", default defaultText: String? = nil) {
        self.variable = variable
        self.summary = summary
        self.note = note
        self.defaultText = defaultText
    }

    var help: ArgumentHelp {
        ArgumentHelp(summary + " [env: \(variable)\(note)]" + (defaultText.map { " (default: \($0))" } ?? ""))
    }
}

/// Every setting of `serve` (the flag is the property of `Serve` of the same name).
enum ServeSettings {
    static let host = ServeSetting("VEO_RELAY_HOST", "Address to listen on.", default: "127.0.0.1")
    static let port = ServeSetting("VEO_RELAY_PORT", "Port to listen on.", default: "8080")
    static let database = ServeSetting("VEO_RELAY_DATABASE", "SQLite database file, or a postgres://user:password@host:5432/db?sslmode=verify-full&sslrootcert=ca.crt URL for several relays sharing one database.", default: "veo-relay.sqlite")
    static let databaseFile = ServeSetting("VEO_RELAY_DATABASE_FILE", "A file holding the database location (a PostgreSQL URL with its password, e.g. a mounted secret).")
    static let databaseTimeout = ServeSetting("VEO_RELAY_DATABASE_TIMEOUT", "How long any one database call may take before the request answers 503 (and a worker retries later); also PostgreSQL's statement timeout.", default: "5s")
    static let upstreamURL = ServeSetting("VEO_RELAY_UPSTREAM_URL", "Upstream base URL.", default: "\(RelayConfiguration.defaultUpstreamURL)")
    static let upstreamAPIKey = ServeSetting("VEO_RELAY_UPSTREAM_API_KEY", "Upstream API key; without one the built-in simulator is used. Prefer the variable: flags show in `ps`.")
    static let upstreamAPIKeyFile = ServeSetting("VEO_RELAY_UPSTREAM_API_KEY_FILE", "A file holding the upstream API key (e.g. a mounted secret).")
    static let callbackAllowHTTP = ServeSetting("VEO_RELAY_CALLBACK_ALLOW_HTTP", "Accept http:// callback URLs (default: https only).", note: "=true")
    static let callbackAllowCIDR = ServeSetting("VEO_RELAY_CALLBACK_ALLOW_CIDRS", "A network callbacks may reach although it is private or loopback, e.g. 127.0.0.0/8; repeatable.", note: ", comma-separated")
    static let checkImageURLs = ServeSetting("VEO_RELAY_CHECK_IMAGE_URLS", "Apply the callback address checks to first_frame_image and last_frame_image too.", note: "=true")
    static let storeVideos = ServeSetting("VEO_RELAY_STORE_VIDEOS", "Keep a copy of every finished video in this directory (a volume every instance on the database mounts) and serve it at /v1/tasks/{id}/videos/{index}; the upstream's URLs expire after a day.", default: "off")
    static let maxVideoBytes = ServeSetting("VEO_RELAY_MAX_VIDEO_BYTES", "Largest video the relay stores, in bytes.", default: "536870912")
    static let storeTimeout = ServeSetting("VEO_RELAY_STORE_TIMEOUT", "How long a finished task's result may wait for its videos to be stored before it is announced with the upstream's URLs and a store_error.", default: "10m")
    static let videoRetention = ServeSetting("VEO_RELAY_VIDEO_RETENTION", "How long stored videos are kept.", default: "30d")
    static let checkVideoURLs = ServeSetting("VEO_RELAY_CHECK_VIDEO_URLS", "Apply the callback address checks to the video URLs the relay downloads.", note: "=true")
    static let rateLimit = ServeSetting("VEO_RELAY_RATE_LIMIT", "API requests per second per client (bursts of twice that).", default: "20")
    static let maxBodyBytes = ServeSetting("VEO_RELAY_MAX_BODY_BYTES", "Largest request body in bytes.", default: "65536")
    static let maxPromptChars = ServeSetting("VEO_RELAY_MAX_PROMPT_CHARS", "Longest prompt in characters.", default: "20000")
    static let maxMetadataBytes = ServeSetting("VEO_RELAY_MAX_METADATA_BYTES", "Largest metadata object in bytes of JSON.", default: "4096")
    static let maxURLLength = ServeSetting("VEO_RELAY_MAX_URL_LENGTH", "Longest URL in bytes.", default: "2048")
    static let apiKeys = ServeSetting("VEO_RELAY_API_KEYS", "A relay API key clients must send as a Bearer token; repeatable.", note: ", comma-separated", default: "a generated key stored in the database")
    static let webhookSecret = ServeSetting("VEO_RELAY_WEBHOOK_SECRET", "Webhook signing secret (whsec_…; or an Ed25519 key whsk_… for v1a signatures, or both space-separated) for the configured API keys.")
    static let defaultBudget = ServeSetting("VEO_RELAY_DEFAULT_BUDGET", "Limits for the clients this relay creates, e.g. per_day=500,per_month=10000,video_seconds_per_day=4000,video_seconds_per_month=80000,in_flight=50; existing clients keep theirs (see `keys budget`).", default: "unlimited")
    static let pollFloor = ServeSetting("VEO_RELAY_POLL_FLOOR", "Shortest gap between two polls of a task.", default: "1s")
    static let pollCeiling = ServeSetting("VEO_RELAY_POLL_CEILING", "Longest gap between two polls of a task.", default: "60s")
    static let pollFixedInterval = ServeSetting("VEO_RELAY_POLL_FIXED_INTERVAL", "Poll every this often instead of adaptively (for comparison).")
    static let upstreamRate = ServeSetting("VEO_RELAY_UPSTREAM_RATE", "Upstream request allowance in requests per second, shared by submissions and polls.", default: "10")
    static let upstreamBurst = ServeSetting("VEO_RELAY_UPSTREAM_BURST", "Upstream requests allowed in one burst.", default: "the rate")
    static let upstreamMaxInFlight = ServeSetting("VEO_RELAY_UPSTREAM_MAX_IN_FLIGHT", "Tasks in flight with the configured upstream key at most, across all relays (the account's concurrency; more keys: `upstream keys add`).", default: "no limit")
    static let taskDeadline = ServeSetting("VEO_RELAY_TASK_DEADLINE", "Longest a task may take before it fails with `timeout`.", default: "3h; shorter for short estimates")
    static let retrySchedule = ServeSetting("VEO_RELAY_RETRY_SCHEDULE", "Webhook retry delays, from the first attempt on.", default: "0,5s,5m,30m,2h,5h,10h,10h")
    static let deliveryTimeout = ServeSetting("VEO_RELAY_DELIVERY_TIMEOUT", "Total timeout of one webhook attempt.", default: "15s")
    static let deliveryConnectTimeout = ServeSetting("VEO_RELAY_DELIVERY_CONNECT_TIMEOUT", "Connect timeout of one webhook attempt.", default: "5s")
    static let deliveryConcurrency = ServeSetting("VEO_RELAY_DELIVERY_CONCURRENCY", "Concurrent webhook attempts in all.", default: "32")
    static let destinationConcurrency = ServeSetting("VEO_RELAY_DESTINATION_CONCURRENCY", "Concurrent webhook attempts to one host:port.", default: "8")
    static let breakerThreshold = ServeSetting("VEO_RELAY_BREAKER_THRESHOLD", "Consecutive failures that open a destination's circuit.", default: "5")
    static let breakerCooldown = ServeSetting("VEO_RELAY_BREAKER_COOLDOWN", "First cool-down of an open circuit; doubles per failed probe up to 10m.", default: "30s")
    static let attemptRetention = ServeSetting("VEO_RELAY_ATTEMPT_RETENTION", "How long delivery attempt logs are kept.", default: "30d")
    static let endpointDisableAfter = ServeSetting("VEO_RELAY_ENDPOINT_DISABLE_AFTER", "Disable an endpoint whose every attempt has failed for this long (its client's other endpoints hear endpoint.disabled).", default: "5d")
    static let leaseDuration = ServeSetting("VEO_RELAY_LEASE_DURATION", "How long a claimed task or event stays owned by this instance before another may take it over.", default: "60s")
    static let ownerSilenceLimit = ServeSetting("VEO_RELAY_OWNER_SILENCE_LIMIT", "How long an instance's heartbeat may be silent before its submissions in flight are judged lost (outcome unknown); longer than a database partition or failover lasts.", default: "5m")
    static let accountHoldLimit = ServeSetting("VEO_RELAY_ACCOUNT_HOLD_LIMIT", "How long a task waits while the upstream account refuses work (401, 402, 403 naming the balance or key) before it fails upstream_account_unavailable.", default: "24h")
    static let clockOffsetWarning = ServeSetting("VEO_RELAY_CLOCK_OFFSET_WARNING", "On PostgreSQL, warn while this host's clock is further than this from the database's (the relay runs on the database's).", default: "1s")
    static let upstreamTimeout = ServeSetting("VEO_RELAY_UPSTREAM_TIMEOUT", "Total timeout of one upstream request.", default: "30s")
    static let drainTimeout = ServeSetting("VEO_RELAY_DRAIN_TIMEOUT", "How long SIGTERM/SIGINT may drain in-flight work before it is cut short; a second signal stops at once.", default: "25s")
    static let readinessGrace = ServeSetting("VEO_RELAY_READINESS_GRACE", "After SIGTERM/SIGINT, keep serving this long with /readyz failing before the server closes, so load balancers stop routing here first; part of the drain timeout.", default: "0s")
    static let apiOnly = ServeSetting("VEO_RELAY_API_ONLY", "Serve the API and event streams only; other instances on the same database submit, poll and deliver.", note: "=true")
    static let corsOrigins = ServeSetting("VEO_RELAY_CORS_ORIGINS", "A browser origin allowed to call the API (CORS), e.g. https://app.example.com; repeatable.", note: ", comma-separated", default: "none")
    static let publicURL = ServeSetting("VEO_RELAY_PUBLIC_URL", "The relay's address as clients reach it, for the watch_url it hands out.", default: "http://<the request's Host>")
    static let watchTokenLifetime = ServeSetting("VEO_RELAY_WATCH_TOKEN_LIFETIME", "How long a watch_url works.", default: "6h")
    static let maxStreamsPerClient = ServeSetting("VEO_RELAY_MAX_STREAMS_PER_CLIENT", "Event streams one client may hold open at once; more get 429.", default: "100")
    static let streamHeartbeat = ServeSetting("VEO_RELAY_STREAM_HEARTBEAT", "Interval of the comment line that keeps idle event streams open through proxies.", default: "15s")
    static let consoleToken = ServeSetting("VEO_RELAY_CONSOLE_TOKEN", "Operator console sign-in token; without one /console is disabled. Prefer the variable or the file: flags show in `ps`.", default: "off")
    static let consoleTokenFile = ServeSetting("VEO_RELAY_CONSOLE_TOKEN_FILE", "A file holding the console token.")
    static let simulatorTimeScale = ServeSetting("VEO_RELAY_SIMULATOR_TIME_SCALE", "Simulator only: multiply job durations by this factor.", default: "0.1")
}
