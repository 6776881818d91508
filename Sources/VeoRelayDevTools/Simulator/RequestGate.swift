import Foundation
import Synchronization

/// A door for simulated requests: open, they pass; closed, they wait until it opens again, and
/// `arrivals(atLeast:)` tells a test when the requests it wants in flight are there.
public final class RequestGate: Sendable {
    private struct State {
        var closed = false
        /// While closed, hold only this many more arrivals (nil: all of them).
        var holding: Int?
        var held: [CheckedContinuation<Void, Never>] = []
        var arrived = 0
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Holds every request from now on (or only the next `count`) until `open()`.
    public func close(holdingOnly count: Int? = nil) {
        state.withLock { state in
            state.closed = true
            state.holding = count
        }
    }

    /// Opens the door and lets everything held through.
    public func open() {
        let held = state.withLock { state in
            state.closed = false
            defer { state.held = [] }
            return state.held
        }
        held.forEach { $0.resume() }
    }

    /// Requests that have arrived while the door was closed (held now or let through since).
    public var arrived: Int { state.withLock { $0.arrived } }

    /// Returns once at least `count` requests have arrived at the closed door.
    public func arrivals(atLeast count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                guard state.arrived < count else { return true }
                state.watchers.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func pass() async {
        await withCheckedContinuation { continuation in
            let (pass, ready) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                guard state.closed, state.holding ?? 1 > 0 else { return (true, []) }
                state.holding = state.holding.map { $0 - 1 }
                state.arrived += 1
                state.held.append(continuation)
                let arrived = state.arrived
                let ready = state.watchers.filter { $0.count <= arrived }.map(\.continuation)
                state.watchers.removeAll { $0.count <= arrived }
                return (false, ready)
            }
            ready.forEach { $0.resume() }
            if pass { continuation.resume() }
        }
    }
}
