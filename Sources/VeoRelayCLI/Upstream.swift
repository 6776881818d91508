import ArgumentParser
import Foundation
import VeoRelay

/// The upstream keys as every relay on the database sees them.
struct Upstream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether the upstream keys take work (a hold on submissions: its reason, since when, the next probe) and manage the keys.",
        subcommands: [Status.self, Keys.self], defaultSubcommand: Status.self)

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each upstream key's standing and the tasks waiting; exits 3 while any key's submissions are held.")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let now = Date()
            let (keys, backlog) = try await store.with { (try await UpstreamKeyReport.all(in: $0, now: now), try await $0.backlog(now: now)) }
            for key in keys { Console.line("upstream key " + key.text(now: now)) }
            Console.line("tasks queued: \(backlog.tasksByState[.queued] ?? 0)")
            if keys.contains(where: { $0.hold != nil }) { throw ExitCode(3) }
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keys",
            abstract: "Upstream keys beyond the configured one (`default`): shared by every client, or a client's own.",
            discussion: """
                Every relay on the database picks changes up within a few seconds, without a restart. Submissions spread over \
                the enabled keys a task may use (its client's own keys, or else the shared ones), within each key's limits; \
                a task is polled only with the key that submitted it.
                """,
            subcommands: [Add.self, List.self, Disable.self, Enable.self, Remove.self])
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a key; its secret is read from standard input (one line) or --secret-file, so that it stays out of shell history and process lists.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "A name for the key: letters, digits, '-', '_' and '.'.") var name: String
        @Option(help: "The client whose tasks this key alone carries (default: shared by every client without a key of its own).")
        var client: String?
        @OptionGroup var key: UpstreamKeyOptions

        func validate() throws {
            try UpstreamKeyOptions.check(name: name)
        }

        func run() async throws {
            try await Self.add(try key.read(name: name, clientID: client), store: store)
        }

        static func add(_ key: UpstreamKey, store: StoreOptions) async throws {
            try await store.with { store in
                if let client = key.clientID, try await !store.clients().contains(where: { $0.id == client }) {
                    throw ValidationError("no client \(client)")
                }
                guard try await store.addUpstreamKey(key) else { throw ValidationError("a key named \(key.name) exists") }
            }
            Console.line("upstream key \(key.name) (…\(key.secret.value.suffix(4))) added, " + (key.clientID.map { "for client \($0)" } ?? "shared"))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys: name, last four characters, owner, limits, tasks in flight, standing.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let now = Date()
            for key in try await store.with({ try await UpstreamKeyReport.all(in: $0, now: now) }) { Console.line(key.text(now: now)) }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop new submissions with a key; the tasks it submitted are still polled with it.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        func run() async throws {
            guard try await store.with({ try await $0.setUpstreamKey(name, enabled: false) }) else { throw ValidationError("no stored key \(name)") }
            Console.line("upstream key \(name) disabled")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a disabled key take submissions again.")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        func run() async throws {
            guard try await store.with({ try await $0.setUpstreamKey(name, enabled: true) }) else { throw ValidationError("no stored key \(name)") }
            Console.line("upstream key \(name) enabled")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a key no unfinished task was submitted with (disable it first, and remove it once they end).")
        @OptionGroup var store: StoreOptions
        @Argument var name: String

        func run() async throws {
            switch try await store.with({ try await $0.removeUpstreamKey(name) }) {
            case .removed: Console.line("upstream key \(name) removed")
            case .notFound: throw ValidationError("no stored key \(name)")
            case .inUse(let tasks): throw ValidationError("\(tasks) unfinished task(s) were submitted with \(name); disable it and remove it once they end")
            }
        }
    }
}

/// A new upstream key's limits and where its secret comes from, for `upstream keys add` and `keys upstream`.
struct UpstreamKeyOptions: ParsableArguments {
    @Option(help: "Tasks in flight with this key at most, across all relays (the upstream account's concurrency).") var maxInFlight: Int?
    @Option(help: "Requests per second with this key, on each relay.") var rate: Double?
    @Option(help: "A file holding the key (e.g. a mounted secret) instead of standard input.") var secretFile: String?

    func validate() throws {
        if let maxInFlight, maxInFlight < 1 { throw ValidationError("--max-in-flight is at least 1") }
        if let rate, !(rate > 0) { throw ValidationError("--rate is a number of requests per second above 0") }
    }

    static func check(name: String) throws {
        guard UpstreamKey.validName(name) else {
            throw ValidationError("key names are 1 to 64 letters, digits, '-', '_' or '.', and not '\(UpstreamKey.configuredName)'")
        }
    }

    /// The key named `name`, its secret read (one line) from `--secret-file` or standard input.
    func read(name: String, clientID: String?) throws -> UpstreamKey {
        let secret = try Serve.secret(fromFile: secretFile, named: "upstream key")
            ?? (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces)
        guard !secret.isEmpty, !secret.contains(where: \.isNewline) else {
            throw ValidationError("no key (one line) on " + (secretFile ?? "standard input"))
        }
        return UpstreamKey(name: name, secret: secret, clientID: clientID, maxInFlight: maxInFlight, rate: rate, createdAt: Date())
    }
}
