import Foundation

/// What a claim reads of an endpoint its deliveries go to.
struct ClaimedEndpoint: Sendable {
    var enabled: Bool
    var maxRate: Int?
    var nextSendAt: Date?
    var secrets: [String]
}

/// Sorts a claim's deliveries, the same way on both stores: sent now; parked (its endpoint is disabled
/// or gone: no due time until it is enabled again); or put back until its endpoint's next free slot.
/// A rate-limited endpoint's sends are spaced `1 / max_rate` apart, so no second holds more than
/// `max_rate` of them on any instance: the next slot is kept on the endpoint's row and moved by
/// compare-and-set, which a concurrent claim on another instance loses.
struct DeliveryClaimPlan {
    var admitted: [PendingDelivery] = []
    var parked: [DeliveryKey] = []
    var deferred: [(key: DeliveryKey, until: Date)] = []
    /// Each rate-limited endpoint's slot moves from `previous` to `next`.
    var slots: [String: (previous: Date?, next: Date)] = [:]
    /// The slot the next of an endpoint's deliveries in this claim would take.
    private var reserved: [String: Date] = [:]

    init(_ claimed: [PendingDelivery], endpoints: [String: ClaimedEndpoint], now: Date) {
        for var delivery in claimed {
            guard let endpointID = delivery.key.target.endpointID else {
                admitted.append(delivery)
                continue
            }
            guard let endpoint = endpoints[endpointID], endpoint.enabled else {
                parked.append(delivery.key)
                continue
            }
            delivery.signingSecrets = endpoint.secrets
            guard let rate = endpoint.maxRate, rate > 0 else {
                admitted.append(delivery)
                continue
            }
            let spacing = 1 / Double(rate)
            let free = reserved[endpointID] ?? max(now, endpoint.nextSendAt ?? now)
            if free <= now {
                admitted.append(delivery)
                slots[endpointID] = (endpoint.nextSendAt, free.addingTimeInterval(spacing))
            } else {
                deferred.append((delivery.key, free))
            }
            // The next one waits a slot more, so that a backlog comes due one delivery per slot, not all at once.
            reserved[endpointID] = free.addingTimeInterval(spacing)
        }
    }

    /// The deliveries the claim gives back, each with its new due time (nil: parked).
    var putBack: [(key: DeliveryKey, due: Date?)] {
        parked.map { ($0, nil) } + deferred.map { ($0.key, $0.until) }
    }

    /// What the claim answers once the plan is settled.
    var claim: DeliveryClaim {
        DeliveryClaim(deliveries: admitted, heldUntil: deferred.map(\.until).sorted())
    }

    /// Applies the slots by compare-and-set (`move` answers whether it won); a delivery whose endpoint's
    /// slot another instance took meanwhile goes back until the slot it would have freed.
    mutating func settleSlots(_ move: (String, Date?, Date) async throws -> Bool) async throws {
        for (endpointID, slot) in slots where try await !move(endpointID, slot.previous, slot.next) {
            let lost = admitted.filter { $0.key.target.endpointID == endpointID }
            admitted.removeAll { $0.key.target.endpointID == endpointID }
            deferred += lost.map { ($0.key, slot.next) }
        }
    }
}
