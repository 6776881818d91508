import Foundation
import Logging

/// At start, a database that does not answer for a while (a partition, a failover) is waited for, not
/// a reason to exit: a relay started again after a crash would otherwise stop for good when nothing
/// starts it a third time. What the database refuses outright (a wrong address, password or role)
/// fails the start at once, as it did before the store opened.
struct StartupWait {
    static let limit: Duration = .seconds(120)

    let logger: Logger

    /// Runs `steps` (each safe to repeat) until they get their answers, or until `limit` has passed.
    func untilAnswered<T>(_ steps: () async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let giveUp = clock.now.advanced(by: Self.limit)
        var pause: Duration = .milliseconds(100)
        while true {
            do {
                return try await steps()
            } catch let fault as StorageFault where fault.kind == "unavailable" && clock.now < giveUp {
                logger.warning("waiting for the database before starting", metadata: [
                    "error": "\(fault)", "gives_up_in": "\(Int((giveUp - clock.now).components.seconds)) s"])
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }
}
