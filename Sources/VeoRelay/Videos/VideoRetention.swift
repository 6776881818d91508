import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Deletes stored videos older than `--video-retention`, hourly; their route then answers 410.
/// Copies are judged by when they were written, so every instance sharing the volume may sweep it.
struct VideoRetention: Service {
    let store: any VideoStore
    let retention: TimeInterval
    let clock: any WallClock
    let logger: Logger
    let failures: FailureBackoff

    init(store: any VideoStore, retention: TimeInterval, clock: any WallClock, logger: Logger) {
        self.store = store
        self.retention = retention
        self.clock = clock
        self.logger = logger
        failures = FailureBackoff(component: "video-retention", logger: logger)
    }

    func run() async throws {
        await failures.repeatEvery(.seconds(3_600), failure: "stored videos could not be swept") {
            try sweep()
        }
    }

    func sweep() throws {
        let removed = try store.removeCopies(writtenBefore: clock.now().addingTimeInterval(-retention))
        if removed > 0 {
            Counter(label: "veo_relay_video_expired_files_total").increment(by: removed)
            logger.info("stored videos past retention deleted", metadata: ["files": "\(removed)"])
        }
    }
}
