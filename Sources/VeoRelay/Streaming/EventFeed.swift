import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Brings new events to the streams open on this instance. One loop asks the store, for every
/// watched task at once, whether any has a newer event: every `interval`, and at once when this
/// instance writes an event. Events written by another instance sharing the database therefore
/// arrive within `interval`, and an open stream costs no query of its own. The same loop sends
/// every stream a heartbeat each `heartbeat`, so no connection needs a timer of its own.
public actor EventFeed: Service, CustomStringConvertible {
    /// A client already holds as many streams as it may.
    public struct LimitReached: Error {}

    private struct Watcher {
        let clientID: String
        let continuation: AsyncStream<Item>.Continuation
        /// The sequence of the last event it was given.
        var after: Int
    }

    public enum Item: Sendable, Equatable {
        case event(StreamEvent)
        case heartbeat
    }

    /// An open watch; `items` ends when it is closed or the feed stops.
    public struct Watch: Sendable {
        public let id: Int
        public let taskID: String
        public let items: AsyncStream<Item>
    }

    let store: any EventLog
    let interval: Duration
    let heartbeat: Duration
    let maxStreamsPerClient: Int
    let wake: WakeSignal
    let logger: Logger
    private var watchers: [String: [Int: Watcher]] = [:]
    private var streamsByClient: [String: Int] = [:]
    private var lastID = 0
    private var stopped = false

    public init(store: any EventLog, interval: Duration, heartbeat: Duration, maxStreamsPerClient: Int, wake: WakeSignal, logger: Logger) {
        self.store = store
        self.interval = interval
        self.heartbeat = heartbeat
        self.maxStreamsPerClient = maxStreamsPerClient
        self.wake = wake
        self.logger = logger
        Gauge(label: "veo_relay_open_streams").record(0)
    }

    public nonisolated var description: String { "EventFeed" }

    /// Starts following a task's events after `sequence`; throws `LimitReached` when the client is at its limit.
    public func watch(taskID: String, clientID: String, after sequence: Int) throws -> Watch {
        guard streamsByClient[clientID, default: 0] < maxStreamsPerClient else { throw LimitReached() }
        let (items, continuation) = AsyncStream<Item>.makeStream()
        lastID += 1
        if stopped {
            continuation.finish()
        } else {
            watchers[taskID, default: [:]][lastID] = Watcher(clientID: clientID, continuation: continuation, after: sequence)
            streamsByClient[clientID, default: 0] += 1
            Gauge(label: "veo_relay_open_streams").record(openStreams)
            wake.signal()
        }
        return Watch(id: lastID, taskID: taskID, items: items)
    }

    public func close(_ watch: Watch) {
        guard let watcher = watchers[watch.taskID]?.removeValue(forKey: watch.id) else { return }
        watcher.continuation.finish()
        if watchers[watch.taskID]?.isEmpty == true { watchers[watch.taskID] = nil }
        streamsByClient[watcher.clientID, default: 1] -= 1
        if streamsByClient[watcher.clientID] == 0 { streamsByClient[watcher.clientID] = nil }
        Gauge(label: "veo_relay_open_streams").record(openStreams)
    }

    public var openStreams: Int { streamsByClient.values.reduce(0, +) }

    public func run() async throws {
        let failures = FailureBackoff(component: "event-feed", logger: logger)
        let cadence = min(interval, heartbeat)
        var delay = cadence
        var lastHeartbeat = ContinuousClock.now
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let wait = delay
            try? await cancelWhenGracefulShutdown { await self.wake.wait(upTo: wait) }
            if ContinuousClock.now - lastHeartbeat >= heartbeat {
                lastHeartbeat = .now
                for watcher in watchers.values.flatMap(\.values) { watcher.continuation.yield(.heartbeat) }
            }
            do {
                try await refresh()
                failures.succeeded()
                delay = cadence
            } catch {
                delay = failures.failed("could not read new events for streams", error: error)
            }
        }
        stop()
    }

    /// Gives every watcher the events written since its last one.
    func refresh() async throws {
        let taskIDs = Array(watchers.keys)
        guard !taskIDs.isEmpty else { return }
        var latest: [String: Int] = [:]
        for start in stride(from: 0, to: taskIDs.count, by: 500) {
            let chunk = Array(taskIDs[start..<min(start + 500, taskIDs.count)])
            latest.merge(try await store.latestEventSequences(taskIDs: chunk), uniquingKeysWith: max)
        }
        for (taskID, newest) in latest {
            guard let oldest = watchers[taskID]?.values.map(\.after).min(), oldest < newest else { continue }
            let events = try await store.streamEvents(taskID: taskID, after: oldest)
            // Watchers may have come and gone while the store answered: update those still here.
            for id in watchers[taskID]?.keys.map({ $0 }) ?? [] {
                guard var watcher = watchers[taskID]?[id] else { continue }
                for event in events where event.sequence > watcher.after {
                    watcher.continuation.yield(.event(event))
                    watcher.after = event.sequence
                }
                watchers[taskID]?[id] = watcher
            }
        }
    }

    /// Ends every stream; later watches end at once.
    func stop() {
        stopped = true
        for watcher in watchers.values.flatMap(\.values) { watcher.continuation.finish() }
        watchers = [:]
        streamsByClient = [:]
        Gauge(label: "veo_relay_open_streams").record(0)
    }
}
