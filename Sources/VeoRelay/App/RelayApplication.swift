import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Tracing

/// The assembled relay: one HTTP application whose service group also runs the submitter, poller
/// and dispatcher. The executable and the tests both build it here.
public struct Relay: Sendable {
    public var application: Application<RouterResponder<RelayRequestContext>>
    /// Every route served, as "METHOD /path" (for checking the OpenAPI document).
    public var routes: [String]
    public var clients: ClientBootstrap.Outcome
    public var upstreamDescription: String
    /// Runs after `application` in a service group to withdraw readiness before the server stops.
    public var readinessWithdrawal: ReadinessWithdrawal
}

/// The wake-up signals that connect the stages.
struct Wakeups {
    let submitter = WakeSignal()
    let poller = WakeSignal()
    let dispatcher = WakeSignal()
    let streams = WakeSignal()
    let storer = WakeSignal()
}

public func buildRelay(
    _ configuration: RelayConfiguration,
    store: (any RelayStore)? = nil,
    /// Tests set the time; a relay runs on an `AnchoredClock` (on PostgreSQL, the database's clock).
    clock givenClock: (any WallClock)? = nil,
    logger: Logger = Logger(label: "veo-relay"),
    /// Where `/metrics` reads from; `serve` bootstraps swift-metrics with the same registry.
    metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    resolver: any HostResolver = SystemResolver(),
    /// What `.simulated` serves as the upstream (the executable's and the tests' `UpstreamSimulator`).
    standIn: MakeUpstreamStandIn? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> Relay {
    // Everything that can fail comes before the HTTP clients, which must be shut down once created.
    try configuration.validate()
    if case .simulated = configuration.upstream, standIn == nil {
        throw ConfigurationError("no built-in simulator in this build: set an upstream API key (VEO_RELAY_UPSTREAM_API_KEY)")
    }
    let openAPI = try OpenAPIDocument.load()
    let videoDirectory = configuration.videos.directory.map(DirectoryVideoStore.init(path:))
    try videoDirectory?.prepare(logger: logger)
    let startup = StartupWait(logger: logger)
    let ownedStore: (any RelayStore)? = store == nil
        ? try await startup.untilAnswered { try await StoreLocation.open(configuration.databasePath, logger: logger, deadline: configuration.databaseTimeout) }
        : nil
    guard let store = store ?? ownedStore else { throw ConfigurationError("no store") }
    var engine = configuration.engine
    let (clockSync, clock, heartbeat, clients, secrets) = try await startup.untilAnswered {
        let clockSync = givenClock == nil ? try await ClockSync.start(store: store, interval: engine.clockSyncInterval,
                                                                      warnAbove: engine.clockOffsetWarning, logger: logger) : nil
        let clock: any WallClock = givenClock ?? clockSync?.clock ?? AnchoredClock()
        let heartbeat = try await InstanceHeartbeat.register(store: store, id: configuration.instanceID, clock: clock,
                                                             interval: engine.heartbeatInterval, logger: logger)
        let clients = try await ClientBootstrap.run(store: store, apiKeys: configuration.apiKeys, webhookSecret: configuration.webhookSecret,
                                                    budget: configuration.defaultBudget, now: clock.now())
        let secrets = (watch: try await store.sharedSecret(named: WatchTokenSigner.secretName, candidate: SharedSecret.generate()),
                       console: configuration.consoleToken == nil ? nil
                           : try await store.sharedSecret(named: ConsoleSessions.secretName, candidate: SharedSecret.generate()))
        return (clockSync, clock, heartbeat, clients, secrets)
    }
    let wakeups = Wakeups()
    // The port actually bound, which differs from the configured one with `--port 0`.
    let boundPort = BoundPort(configuration.port)
    let upstreamHTTP = HTTPClient.relayClient(connectTimeout: engine.upstreamConnectTimeout)
    let webhookHTTP = HTTPClient.relayClient(connectTimeout: engine.deliveryConnectTimeout, allowedPeers: configuration.callbacks.addresses)
    let videoHTTP = videoDirectory.map { _ in
        HTTPClient.relayClient(connectTimeout: configuration.videos.connectTimeout,
                               allowedPeers: configuration.videos.checkAddresses ? configuration.callbacks.addresses : nil)
    }

    let watchTokens = WatchTokenSigner(secret: secrets.watch, lifetime: configuration.streams.watchTokenLifetime)
    let watchLinks = WatchLinks(signer: watchTokens, publicURL: configuration.streams.publicURL, clock: clock)
    let feed = EventFeed(store: store, interval: configuration.streams.pollInterval, heartbeat: configuration.streams.heartbeat,
                         maxStreamsPerClient: configuration.streams.maxPerClient, wake: wakeups.streams, logger: logger)

    let router = Router(context: RelayRequestContext.self)
    router.middlewares.add(MetricsMiddleware())
    router.middlewares.add(AllowedOriginsCORS(origins: configuration.streams.corsOrigins))
    router.middlewares.add(ErrorEnvelopeMiddleware(logger: logger))
    let api = router.group("v1")
    // Spans only where a tracer takes them: without one the middleware would still build each request's
    // attributes, a few percent of intake's CPU. A watch token in a query string is a credential: traces get it redacted.
    if !(InstrumentationSystem.tracer is NoOpTracer) {
        api.add(middleware: TracingMiddleware(redactingQueryParameters: [BearerAuthenticator.watchTokenParameter]))
    }
    api.add(middleware: BearerAuthenticator(store: store, watchTokens: watchTokens, clock: clock,
                                            failures: FailedAttempts("authentications", policy: configuration.failedAttempts, clock: clock,
                                                                     logger: logger)))
        .add(middleware: RateLimitMiddleware(policy: configuration.rateLimit, clock: clock))
    GenerationsController(inserts: GroupCommit { batch in try await store.insert(batch) }, validator: RequestValidator(limits: configuration.limits),
                          callbackGuard: CallbackGuard(policy: configuration.callbacks, resolver: resolver), clock: clock,
                          submitterWake: wakeups.submitter, maxBodyBytes: configuration.maxBodyBytes, watchLinks: watchLinks).addRoutes(to: api)
    let transitions = TaskTransitions(store: store, clock: clock, dispatcherWake: wakeups.dispatcher, streamWake: wakeups.streams)
    let cancellation = TaskCancellation(store: store, clock: clock, wakes: transitions.wakes)
    TasksController(store: store, cancellation: cancellation, watchLinks: watchLinks).addRoutes(to: api)
    EventStreamController(store: store, feed: feed).addRoutes(to: api)
    DeliveriesController(store: store, clock: clock, dispatcherWake: wakeups.dispatcher).addRoutes(to: api)
    let endpointTester = EndpointTester(store: store, http: webhookHTTP, timeout: engine.deliveryTimeout, clock: clock)
    EndpointsController(store: store, callbackGuard: CallbackGuard(policy: configuration.callbacks, resolver: resolver), tester: endpointTester,
                        clock: clock, dispatcherWake: wakeups.dispatcher).addRoutes(to: api)
    UsageController(store: store, clock: clock).addRoutes(to: api)
    let videoFiles = videoDirectory.map { VideoCopyResponder(store: $0) }
    if let videoFiles { VideosController(store: store, files: videoFiles).addRoutes(to: api) }

    let gate = UpstreamGate(policy: engine.upstream, clock: clock)
    let destinations = DestinationGate(policy: engine.destinations)
    let stopState = StopState()
    OperationsController(store: store, stopState: stopState, metrics: metrics,
                         sampler: MetricsSampler(store: store, upstream: gate, destinations: destinations, clock: clock,
                                                 failures: FailureBackoff(component: "metrics", logger: logger)),
                         openAPI: openAPI, databaseLink: StoreLocation.link(configuration.databasePath)).addRoutes(to: router)
    if let token = configuration.consoleToken, let consoleSecret = secrets.console {
        let sessions = ConsoleSessions(token: token, sharedSecret: consoleSecret,
                                       secureCookies: !configuration.listensOnLoopback, clock: clock)
        try Console(store: store, cancellation: cancellation, sessions: sessions,
                    failures: FailedAttempts("console sign-ins", policy: configuration.failedAttempts, clock: clock, logger: logger),
                    clock: clock, dispatcherWake: wakeups.dispatcher, upstream: gate,
                              destinations: destinations, videos: videoFiles, endpointTester: endpointTester).addRoutes(to: router)
    } else {
        ConsoleOff.addRoutes(to: router)
    }
    MetricsSampler.recordStart(at: clock.now())
    let upstream: UpstreamClient
    let upstreamDescription: String
    let configuredKey: String
    switch configuration.upstream {
    case .remote(let url, let apiKey):
        upstream = UpstreamClient(baseURL: url, http: upstreamHTTP, timeout: .interval(engine.upstreamTimeout), gate: gate, clock: clock)
        upstreamDescription = url
        configuredKey = apiKey
    case .simulated(let timeScale):
        // The simulator is mounted on the relay's own server; a random key keeps outsiders out of it.
        let internalKey = APIKey.generate()
        standIn?(internalKey, timeScale, clock).serve(under: router.group("simulator"))
        // Simulated jobs run on compressed time: expect them to be as short as the simulator makes them.
        engine.polling.defaultEstimates = engine.polling.defaultEstimates.mapValues { $0 * timeScale }
        let location: @Sendable () -> String = { configuration.loopbackBaseURL(port: boundPort.value) + "/simulator" }
        upstream = UpstreamClient(location: location, http: upstreamHTTP, timeout: .interval(engine.upstreamTimeout), gate: gate, clock: clock)
        configuredKey = internalKey
        upstreamDescription = "built-in simulator at \(location()) (time scale \(timeScale))"
    }

    let stages = UpstreamStageContext(
        store: store, upstream: upstream, keys: UpstreamKeyRing(configuredSecret: configuredKey, maxInFlight: engine.configuredKeyMaxInFlight, store: store, clock: clock), gate: gate,
        clock: clock, instance: configuration.instanceID,
        schedule: PollSchedule(policy: engine.polling, estimates: DurationEstimates(defaults: engine.polling.defaultEstimates)),
        configuration: engine, transitions: transitions, logger: logger, storerWake: videoDirectory == nil ? nil : wakeups.storer)
    func worker(_ stage: some PipelineStage, concurrency: Int, wake: WakeSignal) -> any Service {
        WorkerLoop(stage: stage, concurrency: concurrency, idleInterval: engine.idleInterval, wake: wake, logger: logger)
    }
    /// With `--store-videos`: the storer and the retention sweep.
    func videoServices() -> [any Service] {
        guard let videoDirectory, let videoHTTP else { return [] }
        let policy = configuration.videos
        let downloader = VideoDownloader(http: videoHTTP, policy: policy, store: videoDirectory,
                                         addressGuard: policy.checkAddresses ? CallbackGuard(policy: configuration.callbacks, resolver: resolver) : nil)
        let base: @Sendable () -> String = { configuration.streams.publicURL ?? configuration.loopbackBaseURL(port: boundPort.value) }
        return [
            worker(VideoCopyStage(store: store, downloader: downloader, transitions: transitions, clock: clock, publicBaseURL: base,
                               instance: configuration.instanceID, leaseDuration: engine.leaseDuration, logger: logger),
                   concurrency: 4, wake: wakeups.storer),
            VideoRetention(store: videoDirectory, retention: policy.retention, clock: clock, logger: logger),
        ]
    }

    let workers: [any Service] = configuration.apiOnly ? [] : [
        worker(Dispatcher(store: store, http: webhookHTTP, clock: clock,
                          leases: stages.leases(for: "dispatcher"), gate: destinations,
                          configuration: engine, logger: logger),
               concurrency: engine.deliveryConcurrency, wake: wakeups.dispatcher),
        worker(Poller(context: stages), concurrency: engine.pollers, wake: wakeups.poller),
        worker(Submitter(context: stages), concurrency: engine.submitters, wake: wakeups.submitter),
    ] + videoServices() + [
        RetentionService(store: store, clock: clock, attemptRetention: engine.attemptRetention,
                         idempotencyRetention: engine.idempotencyRetention, logger: logger),
        PauseWatch(store: store, logger: logger),
        EndpointWatch(store: store, clock: clock, disableAfter: engine.endpointDisableAfter, interval: engine.endpointCheckInterval,
                      dispatcherWake: wakeups.dispatcher, logger: logger),
    ]

    // Services stop in reverse order: the server stops accepting first, then the submitter, poller
    // and dispatcher finish what they hold, the HTTP clients they share close, and the heartbeat and
    // the clock stop last (the instance is declared stopped only once its stages have).
    var services: [any Service] = ownedStore.map { [StoreService(store: $0)] } ?? []
    services.append(heartbeat)
    if let clockSync { services.append(clockSync) }
    services += [HTTPClientService(client: upstreamHTTP), HTTPClientService(client: webhookHTTP)]
    if let videoHTTP { services.append(HTTPClientService(client: videoHTTP)) }
    services += [feed] + workers
    let application = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "veo-relay"),
        services: services,
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            boundPort.value = port
            await onServerRunning(port)
        },
        logger: logger)
    return Relay(application: application, routes: router.routes.map(\.description), clients: clients,
                 upstreamDescription: upstreamDescription,
                 readinessWithdrawal: ReadinessWithdrawal(state: stopState, grace: .seconds(configuration.readinessGrace)))
}

/// The port the server is listening on, once it is.
final class BoundPort: Sendable {
    private let port: Mutex<Int>

    init(_ port: Int) {
        self.port = Mutex(port)
    }

    var value: Int {
        get { port.withLock { $0 } }
        set { port.withLock { $0 = newValue } }
    }
}

/// Closes a store the relay opened itself, after everything that uses it has stopped.
struct StoreService: Service, CustomStringConvertible {
    let store: any RelayStore
    let description = "StoreService"

    func run() async throws {
        try? await gracefulShutdown()
        store.close()
    }
}

/// Owns an `HTTPClient` for the life of a service group and shuts it down at the end.
struct HTTPClientService: Service, CustomStringConvertible {
    let client: HTTPClient
    let description = "HTTPClientService"

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
