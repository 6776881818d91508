import Foundation
import Hummingbird
import Logging

/// A client's registered endpoints: `POST/GET /v1/endpoints`, `GET/PATCH/DELETE /v1/endpoints/{id}`,
/// `POST /v1/endpoints/{id}/test`, `POST /v1/endpoints/{id}/rotate-secret`, and the public keys
/// receivers verify `v1a` signatures with, `GET /v1/signing-keys`.
public struct EndpointsController: Sendable {
    let store: any EndpointDirectory
    let callbackGuard: CallbackGuard
    let tester: EndpointTester
    let clock: any WallClock
    let dispatcherWake: WakeSignal

    static let maxBodyBytes = 16 * 1_024
    /// The window of the health figures.
    public static let healthWindow: TimeInterval = 86_400
    static let maxGrace: TimeInterval = 7 * 86_400

    public func addRoutes(to group: RouterGroup<RelayRequestContext>) {
        group.post("/endpoints", use: create)
        group.get("/endpoints", use: list)
        group.get("/endpoints/:id", use: show)
        group.patch("/endpoints/:id", use: update)
        group.delete("/endpoints/:id", use: delete)
        group.post("/endpoints/:id/test", use: test)
        group.post("/endpoints/:id/rotate-secret", use: rotate)
        group.get("/signing-keys", use: signingKeys)
    }

    @Sendable func create(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let settings = try await Self.settings(request, creating: true)
        let url = settings.url ?? ""
        try await check(url)
        let keys = SigningKeys.generate(settings.signatures ?? [.v1])
        let endpoint = settings.applied(to: Endpoint(clientID: client.id, url: url, signatures: keys.schemes, now: clock.now()), at: clock.now())
        try await store.createEndpoint(endpoint, keys: keys)
        context.logger.info("endpoint created", metadata: ["endpoint_id": "\(endpoint.id)", "client_id": "\(client.id)"])
        return try JSONResponse.make(.created, Envelope(code: 201, data: EndpointResource(endpoint, keys: keys, health: nil)))
    }

    @Sendable func list(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let health = try await store.endpointHealth(scope: .client(client.id), since: clock.now().addingTimeInterval(-Self.healthWindow))
        let endpoints = try await store.endpoints(scope: .client(client.id))
        return try JSONResponse.make(.ok, Envelope(code: 200, data: endpoints.map { EndpointResource($0, keys: nil, health: health[$0.id] ?? EndpointHealth()) }))
    }

    @Sendable func show(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let endpoint = try await find(context, client: client)
        let health = try await store.endpointHealth(scope: .client(client.id), since: clock.now().addingTimeInterval(-Self.healthWindow))
        return try JSONResponse.make(.ok, Envelope(code: 200, data: EndpointResource(endpoint, keys: nil, health: health[endpoint.id] ?? EndpointHealth())))
    }

    @Sendable func update(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let endpoint = try await find(context, client: client)
        let settings = try await Self.settings(request, creating: false)
        if let url = settings.url { try await check(url) }
        let changed = settings.applied(to: endpoint, at: clock.now())
        guard try await store.updateEndpoint(changed, now: clock.now()) else { throw APIError.notFound("No endpoint '\(endpoint.id)'.") }
        if changed.enabled, !endpoint.enabled { dispatcherWake.signal() }
        context.logger.info("endpoint updated", metadata: ["endpoint_id": "\(endpoint.id)", "enabled": "\(changed.enabled)"])
        let stored = try await store.endpoint(id: endpoint.id, scope: .client(client.id)) ?? changed
        return try JSONResponse.make(.ok, Envelope(code: 200, data: EndpointResource(stored, keys: nil, health: nil)))
    }

    @Sendable func delete(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let id = try context.parameters.require("id")
        guard try await store.deleteEndpoint(id: id, scope: .client(client.id)) else { throw APIError.notFound("No endpoint '\(id)'.") }
        context.logger.info("endpoint deleted", metadata: ["endpoint_id": "\(id)"])
        return try JSONResponse.make(.ok, Envelope(code: 200, data: Deleted(id: id)))
    }

    /// Sends a signed `endpoint.test` event now (see `EndpointTester`) and answers with what came of it.
    @Sendable func test(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let endpoint = try await find(context, client: client)
        guard let result = try await tester.test(endpoint, scope: .client(client.id)) else { throw APIError.notFound("No endpoint '\(endpoint.id)'.") }
        context.logger.info("endpoint test", metadata: ["endpoint_id": "\(endpoint.id)", "result": "\(result.summary)"])
        return try JSONResponse.make(.ok, Envelope(code: 200, data: TestResult(result)))
    }

    /// New keys (optionally of other schemes); the old ones keep signing for `grace_seconds` (default a day).
    @Sendable func rotate(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let endpoint = try await find(context, client: client)
        let json = try await Self.body(request, emptyAllowed: true)
        if let unknown = json.objectValue?.keys.sorted().first(where: { !["signatures", "grace_seconds"].contains($0) }) {
            throw APIError.invalidRequest("Unknown field '\(unknown)'; a rotation takes signatures and grace_seconds.", param: unknown)
        }
        let schemes: Set<SignatureScheme>
        do { schemes = try json["signatures"].map(EndpointSettings.schemes) ?? endpoint.signatures } catch { throw APIError.validation(error) }
        var grace = Client.replacedSecretGrace
        if let value = json["grace_seconds"] {
            guard case .int(let seconds) = value, (0...Int(Self.maxGrace)).contains(seconds) else {
                throw APIError.invalidRequest("grace_seconds must be an integer from 0 to \(Int(Self.maxGrace)).", param: "grace_seconds")
            }
            grace = TimeInterval(seconds)
        }
        let keys = SigningKeys.generate(schemes)
        let now = clock.now()
        guard try await store.rotateEndpointKeys(id: endpoint.id, scope: .client(client.id), keys: keys,
                                                 previousValidUntil: now.addingTimeInterval(grace), now: now)
        else { throw APIError.notFound("No endpoint '\(endpoint.id)'.") }
        context.logger.info("endpoint keys rotated", metadata: ["endpoint_id": "\(endpoint.id)"])
        let stored = try await store.endpoint(id: endpoint.id, scope: .client(client.id)) ?? endpoint
        return try JSONResponse.make(.ok, Envelope(code: 200, data: EndpointResource(stored, keys: keys, health: nil)))
    }

    @Sendable func signingKeys(_ request: Request, context: RelayRequestContext) async throws -> Response {
        let client = try context.requireClient()
        let keys = try await store.publishedKeys(clientID: client.id, now: clock.now())
        return try JSONResponse.make(.ok, Envelope(code: 200, data: keys.map(PublishedKeyResource.init)))
    }

    private func find(_ context: RelayRequestContext, client: Client) async throws -> Endpoint {
        let id = try context.parameters.require("id")
        guard let endpoint = try await store.endpoint(id: id, scope: .client(client.id)) else { throw APIError.notFound("No endpoint '\(id)'.") }
        return endpoint
    }

    private func check(_ url: String) async throws {
        do { try await callbackGuard.check(url, param: "url") } catch { throw APIError.validation(error) }
    }

    static func body(_ request: Request, emptyAllowed: Bool) async throws -> JSONValue {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, type: "invalid_request_error", message: "The request body must be at most \(maxBodyBytes) bytes.")
        }
        if body.readableBytes == 0, emptyAllowed { return .object([:]) }
        do { return try JSONValue.parse(Data(buffer: body)) } catch { throw APIError.invalidRequest("The body must be a JSON object.") }
    }

    static func settings(_ request: Request, creating: Bool) async throws -> EndpointSettings {
        let json = try await body(request, emptyAllowed: false)
        do { return try EndpointSettings(parsing: json, creating: creating) } catch { throw APIError.validation(error) }
    }
}

/// An endpoint as the API shows it. Its HMAC secret appears once, when it is created or rotated;
/// an Ed25519 secret key never leaves the relay (receivers get the public key).
struct EndpointResource: Encodable {
    var id, url, description: String
    var eventTypes: [String]
    var enabled: Bool
    var disabledReason: String?
    var maxRate: Int?
    var signatures: [String]
    var secret: String?
    var publicKey: String?
    var failingSince: Int?
    var previousKeysUntil: Int?
    var createdAt, updatedAt: Int
    var health: Health?

    struct Health: Encodable {
        var attempts: Int
        var successRate: Double?
        var lastError: String?
        var lastAttemptAt: Int?

        enum CodingKeys: String, CodingKey {
            case attempts
            case successRate = "success_rate"
            case lastError = "last_error"
            case lastAttemptAt = "last_attempt_at"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, url, description, enabled, signatures, secret, health
        case eventTypes = "event_types"
        case disabledReason = "disabled_reason"
        case maxRate = "max_rate"
        case publicKey = "public_key"
        case failingSince = "failing_since"
        case previousKeysUntil = "previous_keys_until"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ endpoint: Endpoint, keys: SigningKeys?, health: EndpointHealth?) {
        id = endpoint.id
        url = endpoint.url
        description = endpoint.description
        eventTypes = endpoint.eventTypes
        enabled = endpoint.enabled
        disabledReason = endpoint.disabledReason
        maxRate = endpoint.maxRate
        signatures = endpoint.signatures.sorted().map(\.rawValue)
        secret = keys?.credentials.compactMap { if case .hmac(let secret) = $0 { secret.encoded } else { nil } }.first
        publicKey = keys?.publicKeys.first
        failingSince = endpoint.failingSince?.unixSeconds
        previousKeysUntil = endpoint.rotationEndsAt?.unixSeconds
        createdAt = endpoint.createdAt.unixSeconds
        updatedAt = endpoint.updatedAt.unixSeconds
        self.health = health.map { Health(attempts: $0.attempts, successRate: $0.successRate, lastError: $0.lastError, lastAttemptAt: $0.lastAttemptAt?.unixSeconds) }
    }
}

struct Deleted: Encodable {
    var id: String
    var deleted = true
}

struct PublishedKeyResource: Encodable {
    var endpointID: String?
    var publicKey: String
    var state: String
    var expiresAt: Int?

    enum CodingKeys: String, CodingKey {
        case state
        case endpointID = "endpoint_id"
        case publicKey = "public_key"
        case expiresAt = "expires_at"
    }

    init(_ key: PublishedKey) {
        endpointID = key.endpointID
        publicKey = key.publicKey
        state = key.state
        expiresAt = key.expiresAt?.unixSeconds
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(endpointID, forKey: .endpointID)
        try container.encode(publicKey, forKey: .publicKey)
        try container.encode(state, forKey: .state)
        try container.encodeIfPresent(expiresAt, forKey: .expiresAt)
    }
}

/// What `POST /v1/endpoints/{id}/test` answers: the one attempt's outcome.
struct TestResult: Encodable {
    var eventID: String
    var delivered: Bool
    var statusCode: Int?
    var latencyMs: Int
    var error: String?
    var responseExcerpt: String?

    enum CodingKeys: String, CodingKey {
        case delivered, error
        case eventID = "event_id"
        case statusCode = "status_code"
        case latencyMs = "latency_ms"
        case responseExcerpt = "response_excerpt"
    }

    init(_ result: EndpointTester.Result) {
        let outcome = result.outcome
        eventID = result.eventID
        delivered = result.delivered
        statusCode = outcome.statusCode
        latencyMs = Int((outcome.latency * 1_000).rounded())
        error = outcome.error
        responseExcerpt = outcome.excerpt
    }
}
