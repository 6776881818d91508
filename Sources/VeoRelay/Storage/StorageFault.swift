import Foundation
import Synchronization

/// Why the database cannot serve right now; the API answers either with 503 and `Retry-After`.
public enum StorageFault: Error, Sendable, Equatable, CustomStringConvertible {
    /// No answer within the deadline: a hung connection, a network partition, a failover.
    case unavailable(database: String, after: Duration)
    /// The database refuses or drops connections (down, restarting, taken away).
    case unreachable(database: String, reason: String)
    /// The database's storage is full: writes fail until space returns.
    case full(database: String)

    public var description: String {
        switch self {
        case .unavailable(let database, let after):
            "the database (\(database)) did not answer within \(after.components.seconds) s"
        case .unreachable(let database, let reason):
            "the database (\(database)) cannot be reached: \(reason)"
        case .full(let database):
            "the relay's storage is full (\(database)): nothing can be written until space is freed"
        }
    }

    /// A label for metrics and logs.
    public var kind: String {
        switch self {
        case .unavailable, .unreachable: "unavailable"
        case .full: "full"
        }
    }
}

/// Remembers that the database reported its storage full, so that readiness can say so while it lasts:
/// a full disk does not stop reads, so a read alone would call the relay ready.
public final class StorageFullSignal: Sendable {
    /// How long after the last "full" error the store still reports it.
    static let memory: Duration = .seconds(10)
    private let lastSeen = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    func record() { lastSeen.withLock { $0 = .now } }

    var isRecent: Bool { lastSeen.withLock { $0 }.map { ContinuousClock.now - $0 < Self.memory } ?? false }
}

/// Bounds every database call: a call that has not answered within `limit` is cancelled and its
/// caller gets `StorageFault.unavailable` at once, whether or not the driver honours the
/// cancellation (a connection hung on a dead peer need not). A call that finishes late is dropped;
/// its transaction commits or not on its own, as after any lost answer.
public struct StoreDeadline: Sendable {
    public static let defaultLimit: Duration = .seconds(5)

    public var limit: Duration
    /// Names the database in the fault (no password).
    public var database: String

    public init(limit: Duration = Self.defaultLimit, database: String) {
        self.limit = limit
        self.database = database
    }

    public func run<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = Race<T>()
        let limit = limit, fault = StorageFault.unavailable(database: database, after: limit)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation)
                let timer = Task {
                    guard (try? await Task.sleep(for: limit)) != nil else { return }
                    race.finish(.failure(fault))
                    race.cancel()
                }
                race.run {
                    defer { timer.cancel() }
                    return try await operation()
                }
            }
        } onCancel: {
            race.cancel()
        }
    }

    /// The operation and the timer racing to answer one continuation: the first answer wins, and
    /// a timed-out operation is cancelled.
    private final class Race<T: Sendable>: Sendable {
        private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
        private let work = Mutex<Task<Void, Never>?>(nil)

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            self.continuation.withLock { $0 = continuation }
        }

        func run(_ operation: @escaping @Sendable () async throws -> T) {
            let task = Task {
                do { finish(.success(try await operation())) } catch { finish(.failure(error)) }
            }
            work.withLock { $0 = task }
        }

        func finish(_ result: Result<T, any Error>) {
            guard let continuation = continuation.withLock({ $0.take() }) else { return }
            continuation.resume(with: result)
        }

        func cancel() {
            work.withLock { $0 }?.cancel()
        }
    }
}
