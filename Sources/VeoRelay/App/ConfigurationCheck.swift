import Foundation

extension RelayConfiguration {
    /// Refuses settings that make no sense before anything starts, naming the setting (its flag and
    /// variable) and the rule, so that a typo is a one-line error at start-up and never a trap, a
    /// spinning loop or a lease shorter than the request it guards.
    public func validate() throws(ConfigurationError) {
        var check = ConfigurationCheck()
        check.require((0...65_535).contains(port), "--port / VEO_RELAY_PORT", "must be 0–65535, not \(port)")
        check.require(!host.isEmpty, "--host / VEO_RELAY_HOST", "must not be empty")
        check.require(!databasePath.isEmpty, "--database / VEO_RELAY_DATABASE", "must not be empty")
        switch upstream {
        case .remote(let url, _):
            check.require(ConfigurationCheck.isHTTPURL(url), "--upstream-url / VEO_RELAY_UPSTREAM_URL", "must be an absolute http(s) URL, not '\(url)'")
        case .simulated(let timeScale):
            check.positive(timeScale, "--simulator-time-scale / VEO_RELAY_SIMULATOR_TIME_SCALE", maximum: 1_000)
        }
        check.positive(rateLimit.rate, "--rate-limit / VEO_RELAY_RATE_LIMIT", maximum: 1_000_000)
        check.require(rateLimit.burst >= 1 && rateLimit.burst <= 2_000_000, "--rate-limit / VEO_RELAY_RATE_LIMIT",
                      "allows bursts of 1 to 2000000 requests, not \(rateLimit.burst)")
        check.atLeastOne(maxBodyBytes, "--max-body-bytes / VEO_RELAY_MAX_BODY_BYTES")
        check.atLeastOne(limits.maxPromptCharacters, "--max-prompt-chars / VEO_RELAY_MAX_PROMPT_CHARS")
        check.atLeastOne(limits.maxMetadataBytes, "--max-metadata-bytes / VEO_RELAY_MAX_METADATA_BYTES")
        check.atLeastOne(limits.maxURLLength, "--max-url-length / VEO_RELAY_MAX_URL_LENGTH")
        check.positive(drainTimeout, "--drain-timeout / VEO_RELAY_DRAIN_TIMEOUT", maximum: ConfigurationCheck.day)
        check.require(readinessGrace >= 0 && readinessGrace < drainTimeout, "--readiness-grace / VEO_RELAY_READINESS_GRACE",
                      "must be at least 0 and shorter than the drain timeout (\(drainTimeout) s), not \(readinessGrace) s")
        engine.validate(into: &check)
        streams.validate(into: &check)
        videos.validate(into: &check)
        if let token = consoleToken {
            check.require(token.count >= 16, "--console-token / VEO_RELAY_CONSOLE_TOKEN", "must be at least 16 characters")
        }
        if let problem = check.problems.first { throw ConfigurationError(problem) }
    }
}

extension StreamPolicy {
    func validate(into check: inout ConfigurationCheck) {
        check.positive(watchTokenLifetime, "--watch-token-lifetime / VEO_RELAY_WATCH_TOKEN_LIFETIME", maximum: 30 * ConfigurationCheck.day)
        check.atLeastOne(maxPerClient, "--max-streams-per-client / VEO_RELAY_MAX_STREAMS_PER_CLIENT")
        check.positive(heartbeat.seconds, "--stream-heartbeat / VEO_RELAY_STREAM_HEARTBEAT", maximum: 3_600)
        for origin in corsOrigins {
            check.require(ConfigurationCheck.isHTTPURL(origin, originOnly: true), "--cors-origin / VEO_RELAY_CORS_ORIGINS",
                          "must be an origin such as https://app.example.com, not '\(origin)'")
        }
        if let publicURL {
            check.require(ConfigurationCheck.isHTTPURL(publicURL), "--public-url / VEO_RELAY_PUBLIC_URL",
                          "must be an absolute http(s) URL, not '\(publicURL)'")
        }
    }
}

extension VideoStorePolicy {
    func validate(into check: inout ConfigurationCheck) {
        guard directory != nil else { return }
        check.require(maxBytes > 0, "--max-video-bytes / VEO_RELAY_MAX_VIDEO_BYTES", "must be at least 1, not \(maxBytes)")
        check.positive(timeout, "--store-timeout / VEO_RELAY_STORE_TIMEOUT", maximum: ConfigurationCheck.day)
        check.positive(retention, "--video-retention / VEO_RELAY_VIDEO_RETENTION", maximum: 3_650 * ConfigurationCheck.day)
    }
}

extension EngineConfiguration {
    func validate(into check: inout ConfigurationCheck) {
        let day = ConfigurationCheck.day
        check.positive(polling.floor, "--poll-floor / VEO_RELAY_POLL_FLOOR", maximum: day)
        check.positive(polling.ceiling, "--poll-ceiling / VEO_RELAY_POLL_CEILING", maximum: day)
        check.require(polling.floor <= polling.ceiling, "--poll-floor / VEO_RELAY_POLL_FLOOR", "must not exceed the poll ceiling")
        if case .fixed(let interval) = polling.mode {
            check.positive(interval, "--poll-fixed-interval / VEO_RELAY_POLL_FIXED_INTERVAL", maximum: day)
        }
        check.positive(upstream.rate, "--upstream-rate / VEO_RELAY_UPSTREAM_RATE", maximum: 1_000_000)
        check.require(upstream.burst >= 1 && upstream.burst <= 1_000_000, "--upstream-burst / VEO_RELAY_UPSTREAM_BURST",
                      "must be 1 to 1000000, not \(upstream.burst)")
        if let configuredKeyMaxInFlight { check.atLeastOne(configuredKeyMaxInFlight, "--upstream-max-in-flight / VEO_RELAY_UPSTREAM_MAX_IN_FLIGHT") }
        check.positive(deadlines.maximum, "--task-deadline / VEO_RELAY_TASK_DEADLINE", maximum: 30 * day)
        check.require(!retrySchedule.delays.isEmpty && retrySchedule.delays.count <= 100, "--retry-schedule / VEO_RELAY_RETRY_SCHEDULE",
                      "must list 1 to 100 delays")
        check.require(retrySchedule.delays.allSatisfy { $0.isFinite && (0...(7 * day)).contains($0) }, "--retry-schedule / VEO_RELAY_RETRY_SCHEDULE",
                      "delays must be between 0 and 7d")
        check.positive(deliveryTimeout, "--delivery-timeout / VEO_RELAY_DELIVERY_TIMEOUT", maximum: 3_600)
        check.positive(deliveryConnectTimeout, "--delivery-connect-timeout / VEO_RELAY_DELIVERY_CONNECT_TIMEOUT", maximum: 3_600)
        check.positive(upstreamTimeout, "--upstream-timeout / VEO_RELAY_UPSTREAM_TIMEOUT", maximum: 3_600)
        check.positive(upstreamConnectTimeout, "upstream connect timeout", maximum: 3_600)
        check.positive(leaseDuration, "--lease-duration / VEO_RELAY_LEASE_DURATION", maximum: day)
        // A lease that ran out while its request was still on the wire would let another instance
        // work the same row: a second webhook, or a paid submission judged unknown while it succeeds.
        let longestRequest = max(upstreamTimeout, deliveryTimeout)
        check.require(leaseDuration > longestRequest, "--lease-duration / VEO_RELAY_LEASE_DURATION",
                      "(\(leaseDuration) s) must outlive the longest request it guards: the upstream timeout (\(upstreamTimeout) s) and the delivery timeout (\(deliveryTimeout) s)")
        check.require(ownerSilenceLimit > leaseDuration && ownerSilenceLimit <= 7 * day, "--owner-silence-limit / VEO_RELAY_OWNER_SILENCE_LIMIT",
                      "(\(ownerSilenceLimit) s) must be longer than the lease (\(leaseDuration) s) and at most 7d")
        check.positive(accountHoldLimit, "--account-hold-limit / VEO_RELAY_ACCOUNT_HOLD_LIMIT", maximum: 30 * day)
        check.positive(clockOffsetWarning, "--clock-offset-warning / VEO_RELAY_CLOCK_OFFSET_WARNING", maximum: day)
        check.atLeastOne(submitters, "submit concurrency")
        check.atLeastOne(pollers, "poll concurrency")
        check.atLeastOne(deliveryConcurrency, "--delivery-concurrency / VEO_RELAY_DELIVERY_CONCURRENCY")
        check.atLeastOne(destinations.maxConcurrent, "--destination-concurrency / VEO_RELAY_DESTINATION_CONCURRENCY")
        check.atLeastOne(destinations.failureThreshold, "--breaker-threshold / VEO_RELAY_BREAKER_THRESHOLD")
        check.positive(destinations.cooldown, "--breaker-cooldown / VEO_RELAY_BREAKER_COOLDOWN", maximum: day)
        check.positive(attemptRetention, "--attempt-retention / VEO_RELAY_ATTEMPT_RETENTION", maximum: 3_650 * day)
        check.positive(idempotencyRetention, "idempotency retention", maximum: 3_650 * day)
        check.positive(endpointDisableAfter, "--endpoint-disable-after / VEO_RELAY_ENDPOINT_DISABLE_AFTER", maximum: 3_650 * day)
    }
}

/// Collects what is wrong with a configuration, one sentence per problem.
struct ConfigurationCheck {
    static let day: TimeInterval = 86_400

    /// An absolute http(s) URL with a host; with `originOnly`, nothing after the host and port.
    static func isHTTPURL(_ text: String, originOnly: Bool = false) -> Bool {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else { return false }
        return ["http", "https"].contains(scheme) && !(components.host ?? "").isEmpty && (!originOnly || components.path.isEmpty)
    }
    private(set) var problems: [String] = []

    mutating func require(_ condition: Bool, _ setting: String, _ rule: @autoclosure () -> String) {
        if !condition { problems.append("invalid configuration: \(setting) \(rule())") }
    }

    mutating func positive(_ value: Double, _ setting: String, maximum: Double) {
        require(value.isFinite && value > 0 && value <= maximum, setting, "must be more than 0 and at most \(maximum), not \(value)")
    }

    mutating func atLeastOne(_ value: Int, _ setting: String) {
        require(value >= 1, setting, "must be at least 1, not \(value)")
    }
}
