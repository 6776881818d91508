import Foundation
import NIOCore

/// The SSRF guard for URLs the relay will fetch or call on a client's behalf.
///
/// At intake it refuses non-https URLs (unless allowed) and any host that is, or resolves to, an
/// address the `AddressPolicy` refuses. Because DNS can answer differently later (rebinding), the
/// webhook client checks again the address it actually connected to (`connectionCheck`), and it
/// never follows redirects.
public struct CallbackGuard: Sendable {
    public struct Policy: Sendable, Equatable {
        /// Accept `http://` callbacks (default: https only).
        public var allowHTTP = false
        public var addresses = AddressPolicy()
        /// Apply the same checks to `first_frame_image` and `last_frame_image`.
        public var checkImageURLs = false
        /// How long intake waits for DNS before refusing the URL as unresolvable.
        public var resolveTimeout: Duration = .seconds(3)

        public init() {}
    }

    public let policy: Policy
    let resolver: any HostResolver

    public init(policy: Policy, resolver: any HostResolver = SystemResolver()) {
        self.policy = policy
        self.resolver = TimeLimitedResolver(resolver, timeout: policy.resolveTimeout)
    }

    /// Checks every URL of a request that the guard covers.
    public func check(_ request: RelayRequest) async throws(ValidationFailure) {
        if let callbackURL = request.callbackURL { try await check(callbackURL, param: "callback_url") }
        guard policy.checkImageURLs else { return }
        for (param, url) in [("first_frame_image", request.generation.firstFrameImage), ("last_frame_image", request.generation.lastFrameImage)] {
            if let url { try await check(url, param: param) }
        }
    }

    public func check(_ url: String, param: String) async throws(ValidationFailure) {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw ValidationFailure(param: param, "\(param) must be an absolute http(s) URL.")
        }
        let scheme = components.scheme?.lowercased()
        guard scheme == "https" || (scheme == "http" && policy.allowHTTP) else {
            throw ValidationFailure(param: param, "\(param) must use https (an operator may allow http with --callback-allow-http, VEO_RELAY_CALLBACK_ALLOW_HTTP=true).")
        }
        let addresses: [[UInt8]]
        if let literal = IPNetwork.parseAddress(host) {
            addresses = [literal]
        } else {
            do {
                addresses = try await resolver.addresses(of: host)
            } catch is TimedOut {
                throw ValidationFailure(param: param, "\(param)'s host '\(host)' did not resolve in time.")
            } catch {
                throw ValidationFailure(param: param, "\(param)'s host '\(host)' does not resolve.")
            }
        }
        guard !addresses.isEmpty else { throw ValidationFailure(param: param, "\(param)'s host '\(host)' does not resolve.") }
        if let refused = addresses.first(where: { !policy.addresses.allows($0) }) {
            throw ValidationFailure(param: param, """
                \(param) points to a private, loopback or reserved address (\(IPNetwork.format(refused) ?? "?")), which the relay does not call \
                (an operator may allow a network with --callback-allow-cidr, e.g. 127.0.0.0/8 for this machine).
                """)
        }
    }

    /// For the webhook HTTP client: fails a connection whose peer the policy refuses.
    public static func connectionCheck(_ policy: AddressPolicy) -> @Sendable (any Channel) -> EventLoopFuture<Void> {
        { channel in
            guard let peer = channel.remoteAddress, policy.allows(peer) else {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(BlockedAddressError(address: channel.remoteAddress?.ipAddress ?? "unknown"))
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    public struct BlockedAddressError: Error, CustomStringConvertible {
        public var address: String
        public var description: String { "the callback connected to \(address), an address the relay does not call" }
    }
}
