import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFileSystem
import NIOHTTP1

/// Why a video could not be copied: a permanent failure ends storing for it with `reason` as its
/// `store_error`; a transient one is retried with backoff until the store timeout.
struct VideoFetchFailure: Error, Equatable {
    /// What went wrong, as `veo_relay_video_store_failures_total` labels it.
    enum Kind: String {
        case httpStatus = "http_status", notVideo = "not_video", tooLarge = "too_large", expired, address
        case diskFull = "disk_full", connection
    }

    var kind: Kind
    var reason: String
    var isTransient: Bool

    static func permanent(_ kind: Kind, _ reason: String) -> Self { Self(kind: kind, reason: reason, isTransient: false) }
    static func transient(_ kind: Kind, _ reason: String) -> Self { Self(kind: kind, reason: reason, isTransient: true) }

    static let diskFull = transient(.diskFull, "disk full")
    static let tooSlow = transient(.connection, "the download did not finish in time")
}

/// Fetches one video into the store: the URL must not have expired (and, with `--check-video-urls`,
/// its host must pass the callback address rules), the answer must be a 2xx `video/…` within the size
/// cap, and the whole download must finish within `downloadTimeout`.
struct VideoDownloader: Sendable {
    let http: HTTPClient
    let policy: VideoStorePolicy
    let store: any VideoStore
    /// Checks the video's host like a callback's, when `--check-video-urls` is on.
    let addressGuard: CallbackGuard?

    func download(_ link: VideoLink, taskID: String, index: Int, now: Date) async throws(VideoFetchFailure) -> StoredBytes {
        if let expiresAt = link.expiresAt, Double(expiresAt) <= now.timeIntervalSince1970 {
            throw .permanent(.expired, "the upstream's URL expired at \(Date(timeIntervalSince1970: Double(expiresAt)).formatted(.iso8601))")
        }
        if let addressGuard {
            do {
                try await addressGuard.check(link.url, param: "video url")
            } catch {
                throw .permanent(.address, "refused: \(error.message)")
            }
        }
        do {
            return try await withinDownloadTimeout { try await fetch(link.url, taskID: taskID, index: index) }
        } catch {
            throw Self.classify(error)
        }
    }

    /// The whole download, body included, within `downloadTimeout`: the HTTP client's deadline covers
    /// the request until its head arrives, not a body that never ends. Unlike `answer(within:)`, which
    /// leaves work it cannot interrupt to finish on its own, this waits for the cancelled download to
    /// end, so its partial file is gone and it cannot rename a copy into place after the storer moved on.
    private func withinDownloadTimeout(_ download: @escaping @Sendable () async throws -> StoredBytes) async throws -> StoredBytes {
        try await withThrowingTaskGroup(of: StoredBytes?.self) { group in
            group.addTask { try await download() }
            group.addTask {
                try await Task.sleep(for: .seconds(policy.downloadTimeout))
                return nil
            }
            defer { group.cancelAll() }
            guard let copy = try await group.next() ?? nil else { throw VideoFetchFailure.tooSlow }
            return copy
        }
    }

    private func fetch(_ url: String, taskID: String, index: Int) async throws -> StoredBytes {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await http.execute(request, timeout: .interval(policy.downloadTimeout))
        switch response.status.code {
        case 200..<300: break
        case 408, 429, 500..<600: throw VideoFetchFailure.transient(.httpStatus, "HTTP \(response.status.code) from the video host")
        default: throw VideoFetchFailure.permanent(.httpStatus, "HTTP \(response.status.code) from the video host")
        }
        let type = response.headers.first(name: "content-type") ?? ""
        guard type.lowercased().hasPrefix("video/") else {
            throw VideoFetchFailure.permanent(.notVideo, "not a video (Content-Type: \(type.isEmpty ? "none" : type))")
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int64.init), length > policy.maxBytes {
            throw VideoFetchFailure.permanent(.tooLarge, "larger than the \(policy.maxBytes)-byte cap (\(length) bytes)")
        }
        return try await store.write(taskID: taskID, index: index, maxBytes: policy.maxBytes, from: response.body)
    }

    static func classify(_ error: any Error) -> VideoFetchFailure {
        if let failure = error as? VideoFetchFailure { return failure }
        if let failure = error as? FileSystemError, let cause = failure.cause as? FileSystemError.SystemCallError, cause.errno == .noSpace {
            return .diskFull
        }
        if let failure = error as? POSIXError, failure.code == .ENOSPC { return .diskFull }
        if let failure = error as? HTTPClientError, failure == .deadlineExceeded { return .tooSlow }
        return .transient(.connection, "\(error)")
    }
}
