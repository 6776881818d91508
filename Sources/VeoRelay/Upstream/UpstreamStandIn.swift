import Hummingbird

/// Something that answers as the upstream, served under `/simulator` on the relay's own server when no
/// upstream key is set: the built-in simulator, which lives with the other development tools
/// (`VeoRelayDevTools`) and is handed to `buildRelay` by whoever links them.
public protocol UpstreamStandIn: Sendable {
    func serve(under group: RouterGroup<RelayRequestContext>)
}

/// Makes the stand-in: it accepts only `apiKey`, and runs its jobs on `timeScale` and `clock`.
public typealias MakeUpstreamStandIn = @Sendable (_ apiKey: String, _ timeScale: Double, _ clock: any WallClock) -> any UpstreamStandIn
