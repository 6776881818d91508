import Foundation
import Hummingbird

/// Builds a task's `watch_url`: its event stream on the relay's public address, carrying a fresh watch
/// token, so that a browser or device can follow the task without the client's API key.
public struct WatchLinks: Sendable {
    let signer: WatchTokenSigner
    /// Where clients reach the relay (`--public-url`); otherwise the `Host` the request was sent to.
    let publicURL: String?
    let clock: any WallClock

    public init(signer: WatchTokenSigner, publicURL: String?, clock: any WallClock) {
        self.signer = signer
        self.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.clock = clock
    }

    public func url(taskID: String, clientID: String, request: Request) -> String {
        let base = publicURL ?? "http://\(request.head.authority ?? "127.0.0.1")"
        let token = signer.token(taskID: taskID, clientID: clientID, now: clock.now())
        return "\(base)/v1/tasks/\(taskID)/events?\(BearerAuthenticator.watchTokenParameter)=\(token)"
    }
}
