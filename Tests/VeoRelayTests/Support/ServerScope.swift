import Foundation
import Synchronization
import Testing

/// What a test started (servers, relay processes), stopped when the test ends however it ends: a
/// failing `#require` or a thrown error leaves nothing running behind it. `RunningServer` and
/// `RelayProcess` enrol themselves in the scope of the test that starts them (`.stopsWhatItStarts`).
final class ServerScope: Sendable {
    @TaskLocal static var current: ServerScope?

    private let stoppers = Mutex<[@Sendable () async -> Void]>([])

    /// Called when the scope ends; what has stopped already stops again harmlessly.
    static func enrol(_ stop: @escaping @Sendable () async -> Void) {
        current?.stoppers.withLock { $0.append(stop) }
    }

    /// Runs `body` in a new scope, then stops what it started, newest first.
    static func run<T>(_ body: () async throws -> T) async throws -> T {
        let scope = ServerScope()
        do {
            let value = try await $current.withValue(scope) { try await body() }
            await scope.stopAll()
            return value
        } catch {
            await scope.stopAll()
            throw error
        }
    }

    private func stopAll() async {
        for stop in stoppers.withLock({ $0 }).reversed() { await stop() }
    }
}

/// A suite or test whose servers and processes are stopped when each test ends (see `ServerScope`).
struct StopsWhatItStarts: TestTrait, SuiteTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // A suite's own scope is its tests': the trait works per test case.
        guard testCase != nil else { return try await function() }
        try await ServerScope.run(function)
    }
}

extension Trait where Self == StopsWhatItStarts {
    static var stopsWhatItStarts: Self { StopsWhatItStarts() }
}
