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

    @Option(help: ServeSettings.host.help)
    var host: String?

    @Option(help: ServeSettings.port.help)
    var port: Int?

    @Option(help: ServeSettings.database.help)
    var database: String?

    @Option(help: ServeSettings.databaseFile.help)
    var databaseFile: String?

    @Option(help: ServeSettings.databaseTimeout.help)
    var databaseTimeout: String?

    @Option(help: ServeSettings.upstreamURL.help)
    var upstreamURL: String?

    @Option(help: ServeSettings.upstreamAPIKey.help)
    var upstreamAPIKey: String?

    @Option(help: ServeSettings.upstreamAPIKeyFile.help)
    var upstreamAPIKeyFile: String?

    @Flag(help: ServeSettings.callbackAllowHTTP.help)
    var callbackAllowHTTP = false

    @Option(help: ServeSettings.callbackAllowCIDR.help)
    var callbackAllowCIDR: [String] = []

    // Named explicitly: derived from the property, the flag would be `--check-image-ur-ls`.
    @Flag(name: .customLong("check-image-urls"),
          help: ServeSettings.checkImageURLs.help)
    var checkImageURLs = false

    @Option(help: ServeSettings.storeVideos.help)
    var storeVideos: String?

    @Option(help: ServeSettings.maxVideoBytes.help)
    var maxVideoBytes: Int64?

    @Option(help: ServeSettings.storeTimeout.help)
    var storeTimeout: String?

    @Option(help: ServeSettings.videoRetention.help)
    var videoRetention: String?

    @Flag(name: .customLong("check-video-urls"),
          help: ServeSettings.checkVideoURLs.help)
    var checkVideoURLs = false

    @Option(help: ServeSettings.rateLimit.help)
    var rateLimit: Double?

    @Option(help: ServeSettings.maxBodyBytes.help)
    var maxBodyBytes: Int?

    @Option(help: ServeSettings.maxPromptChars.help)
    var maxPromptChars: Int?

    @Option(help: ServeSettings.maxMetadataBytes.help)
    var maxMetadataBytes: Int?

    @Option(help: ServeSettings.maxURLLength.help)
    var maxURLLength: Int?

    @Option(name: .customLong("api-key"), help: ServeSettings.apiKeys.help)
    var apiKeys: [String] = []

    @Option(help: ServeSettings.webhookSecret.help)
    var webhookSecret: String?

    @Option(help: ServeSettings.defaultBudget.help)
    var defaultBudget: String?

    @Option(help: ServeSettings.pollFloor.help)
    var pollFloor: String?

    @Option(help: ServeSettings.pollCeiling.help)
    var pollCeiling: String?

    @Option(help: ServeSettings.pollFixedInterval.help)
    var pollFixedInterval: String?

    @Option(help: ServeSettings.upstreamRate.help)
    var upstreamRate: Double?

    @Option(help: ServeSettings.upstreamBurst.help)
    var upstreamBurst: Double?

    @Option(help: ServeSettings.upstreamMaxInFlight.help)
    var upstreamMaxInFlight: Int?

    @Option(help: ServeSettings.taskDeadline.help)
    var taskDeadline: String?

    @Option(help: ServeSettings.retrySchedule.help)
    var retrySchedule: String?

    @Option(help: ServeSettings.deliveryTimeout.help)
    var deliveryTimeout: String?

    @Option(help: ServeSettings.deliveryConnectTimeout.help)
    var deliveryConnectTimeout: String?

    @Option(help: ServeSettings.deliveryConcurrency.help)
    var deliveryConcurrency: Int?

    @Option(help: ServeSettings.destinationConcurrency.help)
    var destinationConcurrency: Int?

    @Option(help: ServeSettings.breakerThreshold.help)
    var breakerThreshold: Int?

    @Option(help: ServeSettings.breakerCooldown.help)
    var breakerCooldown: String?

    @Option(help: ServeSettings.attemptRetention.help)
    var attemptRetention: String?

    @Option(help: ServeSettings.endpointDisableAfter.help)
    var endpointDisableAfter: String?

    @Option(help: ServeSettings.leaseDuration.help)
    var leaseDuration: String?

    @Option(help: ServeSettings.ownerSilenceLimit.help)
    var ownerSilenceLimit: String?

    @Option(help: ServeSettings.accountHoldLimit.help)
    var accountHoldLimit: String?

    @Option(help: ServeSettings.clockOffsetWarning.help)
    var clockOffsetWarning: String?

    @Option(help: ServeSettings.upstreamTimeout.help)
    var upstreamTimeout: String?

    @Option(help: ServeSettings.drainTimeout.help)
    var drainTimeout: String?

    @Option(help: ServeSettings.readinessGrace.help)
    var readinessGrace: String?

    @Flag(help: ServeSettings.apiOnly.help)
    var apiOnly = false

    @Option(name: .customLong("cors-origin"), help: ServeSettings.corsOrigins.help)
    var corsOrigins: [String] = []

    @Option(help: ServeSettings.publicURL.help)
    var publicURL: String?

    @Option(help: ServeSettings.watchTokenLifetime.help)
    var watchTokenLifetime: String?

    @Option(help: ServeSettings.maxStreamsPerClient.help)
    var maxStreamsPerClient: Int?

    @Option(help: ServeSettings.streamHeartbeat.help)
    var streamHeartbeat: String?

    @Option(help: ServeSettings.consoleToken.help)
    var consoleToken: String?

    @Option(help: ServeSettings.consoleTokenFile.help)
    var consoleTokenFile: String?

    @Option(help: ServeSettings.simulatorTimeScale.help)
    var simulatorTimeScale: Double?

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var tracing: TracingOptions

    func configuration() throws -> RelayConfiguration {
        var configuration = RelayConfiguration()
        configuration.host = host ?? Env.string(ServeSettings.host.variable) ?? configuration.host
        configuration.port = try port ?? Env.value(ServeSettings.port.variable) ?? configuration.port
        configuration.databasePath = try database ?? Env.string(ServeSettings.database.variable)
            ?? Self.secret(fromFile: databaseFile ?? Env.string(ServeSettings.databaseFile.variable), named: "database URL") ?? configuration.databasePath
        if let timeout = try Env.duration(databaseTimeout, ServeSettings.databaseTimeout.variable) { configuration.databaseTimeout = .seconds(timeout) }
        let upstreamURL = upstreamURL ?? Env.string(ServeSettings.upstreamURL.variable) ?? RelayConfiguration.defaultUpstreamURL
        if let key = try upstreamAPIKey ?? Env.string(ServeSettings.upstreamAPIKey.variable)
            ?? Self.secret(fromFile: upstreamAPIKeyFile ?? Env.string(ServeSettings.upstreamAPIKeyFile.variable), named: "upstream key") {
            configuration.upstream = .remote(url: upstreamURL, apiKey: key)
        } else {
            let scale = try simulatorTimeScale ?? Env.value(ServeSettings.simulatorTimeScale.variable) ?? 0.1
            configuration.upstream = .simulated(timeScale: scale)
        }
        configuration.apiKeys = apiKeys.isEmpty ? Env.list(ServeSettings.apiKeys.variable) : apiKeys
        configuration.callbacks.allowHTTP = callbackAllowHTTP || Env.flag(ServeSettings.callbackAllowHTTP.variable)
        configuration.callbacks.checkImageURLs = checkImageURLs || Env.flag(ServeSettings.checkImageURLs.variable)
        configuration.callbacks.addresses.allowed = try (callbackAllowCIDR.isEmpty ? Env.list(ServeSettings.callbackAllowCIDR.variable) : callbackAllowCIDR)
            .map { text in
                guard let network = IPNetwork(text) else { throw ValidationError("'\(text)' is not a CIDR network such as 127.0.0.0/8") }
                return network
            }
        if let rate = try rateLimit ?? Env.value(ServeSettings.rateLimit.variable, as: Double.self) {
            configuration.rateLimit.rate = rate
            configuration.rateLimit.burst = rate * 2
        }
        configuration.maxBodyBytes = try maxBodyBytes ?? Env.value(ServeSettings.maxBodyBytes.variable) ?? configuration.maxBodyBytes
        configuration.limits.maxPromptCharacters = try maxPromptChars ?? Env.value(ServeSettings.maxPromptChars.variable) ?? configuration.limits.maxPromptCharacters
        configuration.limits.maxMetadataBytes = try maxMetadataBytes ?? Env.value(ServeSettings.maxMetadataBytes.variable) ?? configuration.limits.maxMetadataBytes
        configuration.limits.maxURLLength = try maxURLLength ?? Env.value(ServeSettings.maxURLLength.variable) ?? configuration.limits.maxURLLength
        configuration.webhookSecret = webhookSecret ?? Env.string(ServeSettings.webhookSecret.variable)
        configuration.defaultBudget = try ClientBudget(parsing: defaultBudget ?? Env.string(ServeSettings.defaultBudget.variable) ?? "")
        var videos = configuration.videos
        videos.directory = storeVideos ?? Env.string(ServeSettings.storeVideos.variable)
        videos.maxBytes = try maxVideoBytes ?? Env.value(ServeSettings.maxVideoBytes.variable) ?? videos.maxBytes
        videos.timeout = try Env.duration(storeTimeout, ServeSettings.storeTimeout.variable) ?? videos.timeout
        videos.retention = try Env.duration(videoRetention, ServeSettings.videoRetention.variable) ?? videos.retention
        videos.checkAddresses = checkVideoURLs || Env.flag(ServeSettings.checkVideoURLs.variable)
        configuration.videos = videos
        var engine = configuration.engine
        engine.polling.floor = try Env.duration(pollFloor, ServeSettings.pollFloor.variable) ?? engine.polling.floor
        engine.polling.ceiling = try Env.duration(pollCeiling, ServeSettings.pollCeiling.variable) ?? engine.polling.ceiling
        if let fixed = try Env.duration(pollFixedInterval, ServeSettings.pollFixedInterval.variable) { engine.polling.mode = .fixed(fixed) }
        engine.upstream.rate = try upstreamRate ?? Env.value(ServeSettings.upstreamRate.variable) ?? engine.upstream.rate
        engine.upstream.burst = try upstreamBurst ?? Env.value(ServeSettings.upstreamBurst.variable) ?? engine.upstream.rate
        engine.configuredKeyMaxInFlight = try upstreamMaxInFlight ?? Env.value(ServeSettings.upstreamMaxInFlight.variable)
        engine.deadlines.maximum = try Env.duration(taskDeadline, ServeSettings.taskDeadline.variable) ?? engine.deadlines.maximum
        engine.deadlines.minimum = min(engine.deadlines.minimum, engine.deadlines.maximum)
        if let text = retrySchedule ?? Env.string(ServeSettings.retrySchedule.variable) {
            engine.retrySchedule = try RetrySchedule(parsing: text)
        }
        engine.deliveryTimeout = try Env.duration(deliveryTimeout, ServeSettings.deliveryTimeout.variable) ?? engine.deliveryTimeout
        engine.upstreamTimeout = try Env.duration(upstreamTimeout, ServeSettings.upstreamTimeout.variable) ?? engine.upstreamTimeout
        engine.leaseDuration = try Env.duration(leaseDuration, ServeSettings.leaseDuration.variable) ?? engine.leaseDuration
        engine.ownerSilenceLimit = try Env.duration(ownerSilenceLimit, ServeSettings.ownerSilenceLimit.variable) ?? engine.ownerSilenceLimit
        engine.accountHoldLimit = try Env.duration(accountHoldLimit, ServeSettings.accountHoldLimit.variable) ?? engine.accountHoldLimit
        engine.clockOffsetWarning = try Env.duration(clockOffsetWarning, ServeSettings.clockOffsetWarning.variable) ?? engine.clockOffsetWarning
        engine.deliveryConnectTimeout = try Env.duration(deliveryConnectTimeout, ServeSettings.deliveryConnectTimeout.variable) ?? engine.deliveryConnectTimeout
        engine.deliveryConcurrency = try deliveryConcurrency ?? Env.value(ServeSettings.deliveryConcurrency.variable) ?? engine.deliveryConcurrency
        engine.destinations.maxConcurrent = try destinationConcurrency ?? Env.value(ServeSettings.destinationConcurrency.variable) ?? engine.destinations.maxConcurrent
        engine.destinations.failureThreshold = try breakerThreshold ?? Env.value(ServeSettings.breakerThreshold.variable) ?? engine.destinations.failureThreshold
        engine.destinations.cooldown = try Env.duration(breakerCooldown, ServeSettings.breakerCooldown.variable) ?? engine.destinations.cooldown
        engine.attemptRetention = try Env.duration(attemptRetention, ServeSettings.attemptRetention.variable) ?? engine.attemptRetention
        engine.endpointDisableAfter = try Env.duration(endpointDisableAfter, ServeSettings.endpointDisableAfter.variable) ?? engine.endpointDisableAfter
        configuration.engine = engine
        configuration.drainTimeout = try Env.duration(drainTimeout, ServeSettings.drainTimeout.variable) ?? configuration.drainTimeout
        configuration.readinessGrace = try Env.duration(readinessGrace, ServeSettings.readinessGrace.variable) ?? configuration.readinessGrace
        configuration.apiOnly = apiOnly || Env.flag(ServeSettings.apiOnly.variable)
        var streams = configuration.streams
        streams.corsOrigins = corsOrigins.isEmpty ? Env.list(ServeSettings.corsOrigins.variable) : corsOrigins
        streams.publicURL = publicURL ?? Env.string(ServeSettings.publicURL.variable)
        streams.watchTokenLifetime = try Env.duration(watchTokenLifetime, ServeSettings.watchTokenLifetime.variable) ?? streams.watchTokenLifetime
        streams.maxPerClient = try maxStreamsPerClient ?? Env.value(ServeSettings.maxStreamsPerClient.variable) ?? streams.maxPerClient
        if let heartbeat = try Env.duration(streamHeartbeat, ServeSettings.streamHeartbeat.variable) { streams.heartbeat = .seconds(heartbeat) }
        configuration.streams = streams
        configuration.consoleToken = try consoleToken ?? Env.string(ServeSettings.consoleToken.variable)
            ?? Self.secret(fromFile: consoleTokenFile ?? Env.string(ServeSettings.consoleTokenFile.variable), named: "console token")
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
