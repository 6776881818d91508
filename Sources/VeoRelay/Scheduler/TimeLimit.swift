import Synchronization

/// The time given for an answer ran out.
public struct TimedOut: Error, CustomStringConvertible {
    public var description: String { "no answer in time" }
}

/// `body`'s result, or `TimedOut` once `timeout` has passed, whichever comes first. The caller is
/// answered on time even when `body` cannot be interrupted (a blocking lookup, a pool waiting for a
/// connection): it is cancelled and left to finish on its own.
func answer<T: Sendable>(within timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let first = FirstAnswer<T>()
    return try await withCheckedThrowingContinuation { continuation in
        first.deliver(to: continuation)
        let work = Task { first.resolve(with: await Result { try await body() }) }
        Task {
            try? await Task.sleep(for: timeout)
            first.resolve(with: .failure(TimedOut()))
            work.cancel()
        }
    }
}

/// Resumes a continuation with whichever result comes first; later ones are dropped.
final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func deliver(to continuation: CheckedContinuation<T, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resolve(with result: Result<T, any Error>) {
        continuation.withLock { waiting in
            defer { waiting = nil }
            return waiting
        }?.resume(with: result)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
