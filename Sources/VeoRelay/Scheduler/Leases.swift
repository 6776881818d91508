import Foundation

/// The lease a cancel writes under: it takes the row from whoever held it.
let cancellationLease = Lease(owner: "cancel", expiresAt: .distantFuture)

/// A claim on rows of work: whoever holds an unexpired lease is the only one working them.
public struct Lease: Sendable, Equatable {
    public var owner: String
    public var expiresAt: Date

    public init(owner: String, expiresAt: Date) {
        self.owner = owner
        self.expiresAt = expiresAt
    }

    /// What a recovery lease's owner starts with. It comes before the incarnation, so no live owner is
    /// ever read from it (`InstanceStatements.ownerAlive` matches an incarnation at the start).
    static let recoveryPrefix = "recovery:"

    /// The lease under which a claim holds an abandoned `submitting` task (to end it, never to send it).
    var recovering: Lease { Lease(owner: Self.recoveryPrefix + owner, expiresAt: expiresAt) }
}

/// A task together with the lease under which a worker may change it.
public struct Claimed: Sendable {
    public var task: RelayTask
    public var lease: Lease
    /// Sent while the upstream account is held, to learn whether it takes work again.
    public var accountProbe = false
}

/// Leases for one stage of one relay instance. Each claim gets its own owner token,
/// `<instance>/<stage>/<claim id>`, so a worker whose lease expired cannot write over the row even if
/// its own instance re-claimed it, and a stage that stops gives back only its own leases.
public struct LeaseIssuer: Sendable {
    public let ownerPrefix: String
    let duration: TimeInterval
    let clock: any WallClock

    public init(instance: String, stage: String, duration: TimeInterval, clock: any WallClock) {
        ownerPrefix = "\(instance)/\(stage)/"
        self.duration = duration
        self.clock = clock
    }

    public func next() -> Lease {
        Lease(owner: ownerPrefix + Identifier.make(prefix: ""), expiresAt: clock.now().addingTimeInterval(duration))
    }
}
