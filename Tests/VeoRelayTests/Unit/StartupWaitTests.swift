import Foundation
import Synchronization
import Testing
@testable import VeoRelay

@Suite("Waiting for the database at start", .stopsWhatItStarts)
struct StartupWaitTests {
    /// A database that does not answer (a partition, a failover) is waited for, saying so.
    @Test func aDatabaseThatDoesNotAnswerIsWaitedFor() async throws {
        let capture = LogCapture()
        let tries = Mutex(0)
        let answer = try await StartupWait(logger: capture.logger).untilAnswered {
            let attempt = tries.withLock { count in
                count += 1
                return count
            }
            if attempt < 3 { throw StorageFault.unavailable(database: "PostgreSQL at db:5432", after: .seconds(1)) }
            return "started"
        }
        #expect(answer == "started")
        #expect(tries.withLock { $0 } == 3)
        try await capture.line(containing: "waiting for the database before starting")
    }

    /// What the database refuses outright is no reason to wait: the start fails at once.
    @Test func aRefusalFailsAtOnce() async throws {
        let tries = Mutex(0)
        await #expect(throws: StorageFault.full(database: "relay.sqlite")) {
            try await StartupWait(logger: TestLog.logger).untilAnswered {
                tries.withLock { $0 += 1 }
                throw StorageFault.full(database: "relay.sqlite")
            }
        }
        #expect(tries.withLock { $0 } == 1)
    }
}
