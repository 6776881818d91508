import Foundation
import Logging
import Metrics

/// The storing stage: copies the videos of tasks the upstream finished, then announces their success
/// with the copies. Claimed by due time under leases like submissions and polls, so a crash resumes
/// it and instances sharing a database never copy one task at once. Storing never holds a result
/// back for long: past `--store-timeout`, or on a failure retrying cannot fix, the video's
/// `store_error` says why and the result goes out with the upstream's URL.
public struct VideoCopyStage: PipelineStage {
    let store: any TaskQueue
    let downloader: VideoDownloader
    let transitions: TaskTransitions
    let clock: any WallClock
    /// Where clients reach the relay, for `stored_url`.
    let publicBaseURL: @Sendable () -> String
    let logger: Logger
    /// Failed downloads (a full disk, a host away), logged at most once a second with their count.
    let failures: FailureBackoff
    public let leases: LeaseIssuer

    init(store: any TaskQueue, downloader: VideoDownloader, transitions: TaskTransitions, clock: any WallClock,
         publicBaseURL: @escaping @Sendable () -> String, instance: String, leaseDuration: TimeInterval, logger: Logger) {
        self.store = store
        self.downloader = downloader
        self.transitions = transitions
        self.clock = clock
        self.publicBaseURL = publicBaseURL
        self.logger = logger
        failures = FailureBackoff(component: "video-store", logger: logger)
        leases = LeaseIssuer(instance: instance, stage: "storer", duration: leaseDuration, clock: clock)
    }

    public var name: String { "storer" }

    public func claim(limit: Int) async throws -> [Claimed] {
        let lease = leases.next()
        return try await store.claimTasks(.store, now: clock.now(), limit: limit, lease: lease).map { Claimed(task: $0, lease: lease) }
    }

    public func releaseLeases() async throws {
        try await store.releaseTaskLeases(ownerPrefix: leases.ownerPrefix)
    }

    public func process(_ claimed: Claimed) async {
        var task = claimed.task
        let renewal = renewLease(of: task, claimed.lease)
        let links = VideoLink.links(from: task.upstream?.result)
        var copies: [VideoCopy] = []
        var retryable: VideoFetchFailure?
        for (index, link) in links.enumerated() {
            let started = ContinuousClock.now
            do {
                let copy = try await downloader.download(link, taskID: task.id, index: index, now: clock.now())
                Timer(label: "veo_relay_video_download_duration_seconds").record(duration: ContinuousClock.now - started)
                Counter(label: "veo_relay_video_stored_bytes_total").increment(by: copy.bytes)
                Counter(label: "veo_relay_video_stored_files_total").increment()
                copies.append(VideoCopy(index: index, storedURL: "\(publicBaseURL())/v1/tasks/\(task.id)/videos/\(index)",
                                        sha256: copy.sha256, bytes: copy.bytes))
            } catch {
                Counter(label: "veo_relay_video_store_failures_total", dimensions: [("reason", error.kind.rawValue)]).increment()
                failures.failed("a video could not be stored", error: error)
                if error.isTransient, !pastTimeout(task) {
                    retryable = error
                    break
                }
                copies.append(VideoCopy(index: index, storeError: error.reason))
            }
        }
        renewal.cancel()
        _ = await renewal.result
        do {
            if let retryable {
                // Copies already made are made again next time: renaming replaces them whole.
                let delay = downloader.policy.backoff.delay(failures: task.failures + 1)
                task.retry(at: min(clock.now().addingTimeInterval(delay), storeDeadline(task)))
                logger.debug("video store will retry", metadata: ["task_id": "\(task.id)", "reason": "\(retryable.reason)"])
                try await transitions.record(task, lease: claimed.lease, keepLease: false)
                return
            }
            failures.succeeded()
            let type = task.stored(copies)
            try await transitions.save(task, lease: claimed.lease, announcing: type)
        } catch {
            logger.error("video store step failed", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
        }
    }

    /// Keeps the claim alive while downloads run, however long they take, by writing the task back
    /// with a later expiry every third of the lease: a relay that dies mid-download stops renewing, and
    /// another instance takes the task over within one lease, not one download timeout.
    private func renewLease(of task: RelayTask, _ lease: Lease) -> Task<Void, Never> {
        let duration = leases.duration
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(duration / 3))
                guard !Task.isCancelled else { return }
                let renewed = Lease(owner: lease.owner, expiresAt: clock.now().addingTimeInterval(duration))
                do {
                    try await transitions.record(task, lease: renewed, keepLease: true)
                } catch {
                    logger.warning("a video store lease could not be renewed", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
                }
            }
        }
    }

    /// When the upstream's completion was first seen plus `--store-timeout`.
    private func storeDeadline(_ task: RelayTask) -> Date {
        (task.completedAt ?? clock.now()).addingTimeInterval(downloader.policy.timeout)
    }

    private func pastTimeout(_ task: RelayTask) -> Bool { clock.now() >= storeDeadline(task) }
}
