import ArgumentParser
import Dispatch
import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization
import VeoRelay

/// How far `serve` got, so that a failure can be explained in one line and the banner shown only
/// once the port is bound.
final class StartupProgress: Sendable {
    private struct State {
        var address = "?"
        var banner: (@Sendable (Int) -> String)?
        var listening = false
    }

    private let state = Mutex(State())

    var address: String {
        get { state.withLock { $0.address } }
        set { state.withLock { $0.address = newValue } }
    }

    var banner: (@Sendable (Int) -> String)? {
        get { state.withLock { $0.banner } }
        set { state.withLock { $0.banner = newValue } }
    }

    func listening(on port: Int) {
        let banner = state.withLock { state in
            state.listening = true
            return state.banner
        }
        if let banner { Console.line(banner(port)) }
    }

    /// The cause of a failed start (or of a relay that stopped on an error), in one line.
    func explain(_ error: any Error) -> String {
        let (address, listening) = state.withLock { ($0.address, $0.listening) }
        switch error {
        case let error as ValidationError: return error.message
        case let error as ConfigurationError: return error.description
        case let error as StoreOpenError: return error.description
        case let error as IOError where !listening: return "cannot listen on \(address): \(String(cString: strerror(error.errnoCode)))"
        default: return (listening ? "stopped: " : "could not start: ") + "\(error)".replacingOccurrences(of: "\n", with: " ")
        }
    }
}

/// SIGTERM and SIGINT: the first drains gracefully (cut short by the group after `drainTimeout`,
/// and by this handler a few seconds later if something still hangs); a second ends the process at
/// once. Every state change is a committed transaction, so stopping at once is as safe as a crash.
final class ShutdownSignals {
    private let sources: [any DispatchSourceSignal]

    init(group: ServiceGroup, drainTimeout: TimeInterval) {
        let received = Mutex(0)
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let count = received.withLock { count in
                    count += 1
                    return count
                }
                guard count == 1 else {
                    Console.error("veo-relay: second signal, stopping at once")
                    _exit(128 + number)
                }
                Console.error("veo-relay: stopping: finishing work in flight for up to \(drainTimeout) s; a second signal stops at once",
                              level: .notice)
                Task { await group.triggerGracefulShutdown() }
                DispatchQueue.global().asyncAfter(deadline: .now() + drainTimeout + 5) {
                    Console.error("veo-relay: still stopping \(Int(drainTimeout) + 5) s after the signal, exiting")
                    _exit(1)
                }
            }
            source.resume()
            return source
        }
    }

    deinit {
        sources.forEach { $0.cancel() }
    }
}
