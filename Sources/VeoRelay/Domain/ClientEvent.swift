import Foundation

/// Events about a client rather than one of its tasks: they go to its endpoints only.
public enum ClientEventType: String, Sendable, CaseIterable {
    /// Sent on request, to one endpoint, whatever its filter (`POST /v1/endpoints/{id}/test`).
    case endpointTest = "endpoint.test"
    /// The relay disabled an endpoint that failed every attempt for `--endpoint-disable-after`.
    case endpointDisabled = "endpoint.disabled"
    /// A period limit of the client's budget reached 80 %.
    case budgetWarning = "budget.warning"
    /// A period limit of the client's budget is used up.
    case budgetExhausted = "budget.exhausted"
    /// The upstream account behind the key that carries the client's tasks refuses work: they wait.
    case upstreamUnavailable = "upstream.unavailable"
    /// That account takes work again: the waiting tasks go on.
    case upstreamRestored = "upstream.restored"
}

/// The event type names an endpoint may subscribe to.
public enum EventTypeName {
    public static let all: [String] = WebhookEventType.allCases.map(\.rawValue)
        + ClientEventType.allCases.filter { $0 != .endpointTest }.map(\.rawValue)
    /// An endpoint created without a filter receives every task event.
    public static let endpointDefault: [String] = WebhookEventType.allCases.map(\.rawValue).sorted()
}

/// A client-level event's envelope `{type, timestamp, data}`, the same shape as a task event's.
public struct ClientEventPayload<Data: Encodable & Sendable>: Encodable, Sendable {
    public var type: String
    public var timestamp: String
    public var data: Data

    public init(type: ClientEventType, at now: Date, data: Data) {
        self.type = type.rawValue
        self.timestamp = now.formatted(.iso8601)
        self.data = data
    }
}

/// `endpoint.test` and `endpoint.disabled` data.
public struct EndpointEventData: Encodable, Sendable {
    public var endpointID: String
    public var url: String
    public var reason: String?

    public init(_ endpoint: Endpoint, reason: String? = nil) {
        endpointID = endpoint.id
        url = endpoint.url
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case url, reason
        case endpointID = "endpoint_id"
    }
}

/// `budget.warning` / `budget.exhausted` data: which limit, how much of it is used, when it frees up.
public struct BudgetAlert: Encodable, Sendable, Equatable {
    public var type: ClientEventType
    public var clientID: String
    public var limit: BudgetLimit
    public var maximum: Int
    public var used: Int
    public var resetsAt: Date?

    /// The share of a period limit at which `budget.warning` goes out.
    public static let warningShare = 0.8

    enum CodingKeys: String, CodingKey {
        case limit, maximum, used
        case clientID = "client_id"
        case resetsAt = "resets_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(clientID, forKey: .clientID)
        try container.encode(limit.rawValue, forKey: .limit)
        try container.encode(maximum, forKey: .maximum)
        try container.encode(used, forKey: .used)
        try container.encodeIfPresent(resetsAt?.unixSeconds, forKey: .resetsAt)
    }

    /// The alerts a task admitted beside `use` sets off: a period limit (day or month) whose use crosses
    /// 80 % (`budget.warning`) or reaches 100 % (`budget.exhausted`) with this task. Use only grows within
    /// a period, so each fires once per limit and period (a cancelled task's share given back may let
    /// it fire again). The in-flight cap rises and falls with every task and raises none.
    public static func crossings(of budget: ClientBudget, clientID: String, seconds: Int, beside use: BudgetUse, at now: Date) -> [BudgetAlert] {
        BudgetLimit.allCases.flatMap { limit -> [BudgetAlert] in
            guard let maximum = budget[limit], maximum > 0, let period = limit.period else { return [] }
            let before = use[limit]
            let after = before + limit.cost(ofSeconds: seconds)
            let warningAt = Int((Double(maximum) * warningShare).rounded(.up))
            var alerts: [BudgetAlert] = []
            if before < warningAt, after >= warningAt, after < maximum {
                alerts.append(BudgetAlert(type: .budgetWarning, clientID: clientID, limit: limit, maximum: maximum, used: after,
                                          resetsAt: period.end(of: now)))
            }
            if before < maximum, after >= maximum {
                alerts.append(BudgetAlert(type: .budgetExhausted, clientID: clientID, limit: limit, maximum: maximum, used: after,
                                          resetsAt: period.end(of: now)))
            }
            return alerts
        }
    }

    /// The event that announces it.
    public func event(at now: Date) throws -> NewEvent {
        try NewEvent(clientEvent: type, data: self, at: now)
    }
}

/// `upstream.unavailable` / `upstream.restored` data: which key (by name), why, since when and, while it
/// holds, when it is next tried.
public struct UpstreamStandingEvent: Encodable, Sendable, Equatable {
    public var key: String
    public var reason: String?
    public var since: Date
    public var nextProbeAt: Date?
    /// On `upstream.restored`: how long the hold lasted.
    public var heldSeconds: Int?

    enum CodingKeys: String, CodingKey {
        case key, reason, since
        case nextProbeAt = "next_probe_at"
        case heldSeconds = "held_seconds"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encode(since.unixSeconds, forKey: .since)
        try container.encodeIfPresent(nextProbeAt?.unixSeconds, forKey: .nextProbeAt)
        try container.encodeIfPresent(heldSeconds, forKey: .heldSeconds)
    }

    static func unavailable(key: String, reason: String, at now: Date, nextProbeAt: Date) throws -> NewEvent {
        try NewEvent(clientEvent: .upstreamUnavailable, data: UpstreamStandingEvent(key: key, reason: reason, since: now, nextProbeAt: nextProbeAt),
                     at: now)
    }

    static func restored(key: String, heldSince: Date, at now: Date) throws -> NewEvent {
        try NewEvent(clientEvent: .upstreamRestored,
                     data: UpstreamStandingEvent(key: key, since: heldSince, heldSeconds: Int(now.timeIntervalSince(heldSince))), at: now)
    }
}

extension NewEvent {
    /// A client event with its `{type, timestamp, data}` envelope, happening `now`.
    init(clientEvent type: ClientEventType, data: some Encodable & Sendable, at now: Date) throws {
        self.init(clientEvent: type, payload: try JSONCoding.encode(ClientEventPayload(type: type, at: now, data: data)), createdAt: now)
    }
}
