import Foundation
import Hummingbird

/// `/console`: a small server-rendered operator console — tasks, one task's events and delivery
/// attempts, dead letters with Replay, clients, endpoints, usage, upstream state and the stop switch.
/// Only routed when a console token is configured. Pages are plain HTML forms without scripts; a
/// strict Content-Security-Policy forbids any, so even a markup injection could not run code. Every
/// page but sign-in is behind `ConsoleDoor`, and each page takes only the parts of the store it reads.
public struct Console: Sendable {
    let door: ConsoleDoor
    let signIn: SignInPage
    let overview: OverviewPage
    let taskList: TaskListPage
    let task: TaskPage
    let deadLetters: DeadLettersPage
    let clients: ClientsPage
    let endpoints: EndpointsPage
    let usage: UsagePage
    let upstream: UpstreamPage

    init(store: any RelayStore, cancellation: TaskCancellation, sessions: ConsoleSessions, failures: FailedAttempts, clock: any WallClock,
         dispatcherWake: WakeSignal, upstream: UpstreamGate, destinations: DestinationGate, videos: VideoCopyResponder? = nil, endpointTester: EndpointTester) throws {
        let pages = try ConsolePages()
        door = ConsoleDoor(sessions: sessions, pages: pages)
        signIn = SignInPage(sessions: sessions, pages: pages, failures: failures)
        overview = OverviewPage(store: store, pages: pages, clock: clock)
        taskList = TaskListPage(store: store, pages: pages)
        task = TaskPage(store: store, cancellation: cancellation, videos: videos, pages: pages, clock: clock, dispatcherWake: dispatcherWake)
        deadLetters = DeadLettersPage(store: store, pages: pages)
        clients = ClientsPage(store: store, pages: pages)
        endpoints = EndpointsPage(store: store, tester: endpointTester, pages: pages, clock: clock, dispatcherWake: dispatcherWake)
        usage = UsagePage(store: store, pages: pages, clock: clock)
        self.upstream = UpstreamPage(store: store, upstream: upstream, destinations: destinations, pages: pages, clock: clock)
    }

    public func addRoutes(to router: Router<RelayRequestContext>) {
        let console = router.group("console", context: ConsoleRequestContext.self)
        let inside = console.group().add(middleware: door)
        signIn.addRoutes(outside: console, inside: inside)
        overview.addRoutes(to: inside)
        taskList.addRoutes(to: inside)
        task.addRoutes(to: inside)
        deadLetters.addRoutes(to: inside)
        clients.addRoutes(to: inside)
        endpoints.addRoutes(to: inside)
        usage.addRoutes(to: inside)
        upstream.addRoutes(to: inside)
    }
}
