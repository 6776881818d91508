import Foundation

/// The relay's source of "now". Every due time, lease and timestamp is computed from it, so tests
/// and simulations can move time forward instead of waiting for it.
public protocol WallClock: Sendable {
    func now() -> Date
}

public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

extension Duration {
    /// The duration in (fractional) seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
