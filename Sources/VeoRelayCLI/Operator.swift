import ArgumentParser
import Foundation
import Logging
import VeoRelay

/// Where operator commands find the relay's state.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite database file or postgres:// URL. [env: VEO_RELAY_DATABASE] (default: veo-relay.sqlite)")
    var database: String?

    /// Runs `body` with the store open, and closes it after.
    func with<T>(_ body: (any RelayStore) async throws -> T) async throws -> T {
        let store = try await StoreLocation.open(database ?? Env.string("VEO_RELAY_DATABASE") ?? RelayConfiguration().databasePath,
                                                 logger: Logger(label: "veo-relay"))
        defer { store.close() }
        return try await body(store)
    }
}

struct Redeliver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a task's latest webhook event again (same webhook-id, fresh retry budget).",
        discussion: "A running relay picks it up within a second.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "The relay task id.")
    var taskID: String

    func run() async throws {
        guard let record = try await store.with({ try await $0.redeliver(taskID: taskID, scope: .allClients, now: Date()) }) else {
            throw ValidationError("no task '\(taskID)' with an event to deliver")
        }
        Console.line("queued \(record.eventID) (\(record.type)) for \(record.callbackURL)")
    }
}

struct Resubmit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a failed task to the upstream again — a new, paid generation.",
        discussion: """
            For tasks that failed with submission_outcome_unknown (the first submission may or may not have \
            reached the upstream), or after fixing what made the upstream reject them. The relay never does \
            this on its own. A running relay picks the task up within a second; its webhooks follow as usual.
            """)

    @OptionGroup var store: StoreOptions

    @Argument(help: "The relay task id.")
    var taskID: String

    func run() async throws {
        guard try await store.with({ try await $0.resubmit(taskID: taskID, now: Date()) }) else {
            throw ValidationError("no failed task '\(taskID)'")
        }
        Console.line("queued \(taskID) for a new submission")
    }
}

struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List webhook deliveries by state (default: failed, i.e. dead letters).")

    @OptionGroup var store: StoreOptions

    @Option(help: "pending, delivered, failed or gone.")
    var state: String = DeliveryState.failed.rawValue

    @Option(help: "At most this many, newest first.")
    var limit = 100

    func run() async throws {
        guard let state = DeliveryState(rawValue: state) else { throw ValidationError("unknown state '\(state)'") }
        for record in try await store.with({ try await $0.deliveries(scope: .allClients, state: state, limit: limit) }) {
            Console.line([record.eventID, record.taskID, record.type, record.state.rawValue, "attempts=\(record.attempts)",
                          "last=\(record.lastStatusCode.map(String.init) ?? record.lastError ?? "-")", record.callbackURL]
                .joined(separator: "  "))
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage relay clients: their API keys (stored hashed) and webhook signing secrets.",
        subcommands: [Create.self, List.self, Budget.self, Revoke.self, RotateSecret.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a client; prints its API key and signing secret once.")
        @OptionGroup var store: StoreOptions
        @Option(help: "A name for the client.") var name: String
        @Option(help: "Its limits, e.g. per_day=500,in_flight=50 (change them later with `keys budget`). [env: VEO_RELAY_DEFAULT_BUDGET] (default: unlimited)")
        var budget: String?

        func run() async throws {
            let budget = try ClientBudget(parsing: budget ?? Env.string("VEO_RELAY_DEFAULT_BUDGET") ?? "")
            let key = APIKey.generate()
            let client = Client(id: Identifier.make(prefix: "cl_"), name: name, signingSecret: WebhookSecret.generate().encoded)
            try await store.with({ try await $0.upsertClient(client, keyHash: APIKey.hash(key), now: Date(), budget: budget) })
            Console.line("client:         \(client.id) (\(name))")
            Console.line("budget:         \(budget.text)")
            Console.line("API key:        \(key)")
            Console.line("signing secret: \(client.signingSecret)")
            Console.line("Both are shown only now; the relay keeps a hash of the key.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List clients (never their keys or secrets).")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            for client in try await store.with({ try await $0.clients() }) {
                var line = "\(client.id)  \(client.name)  created \(client.createdAt.formatted(.iso8601))  budget \(client.budget.text)"
                if let revoked = client.revokedAt { line += "  REVOKED \(revoked.formatted(.iso8601))" }
                if let rotation = client.rotationEndsAt, rotation > Date() { line += "  previous secret valid until \(rotation.formatted(.iso8601))" }
                Console.line(line)
            }
        }
    }

    struct Budget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a client's limits; the ones not named stay as they are (--clear first removes them all).",
            discussion: """
                Days and months are UTC. Enforced at intake on every relay on this database: a request past a limit \
                answers 429 budget_exceeded. Prints the limits in force.
                """)
        @OptionGroup var store: StoreOptions
        @Argument var clientID: String
        @Option(help: "Generations per UTC day.") var perDay: Int?
        @Option(help: "Generations per UTC month.") var perMonth: Int?
        @Option(help: "Seconds of video requested per UTC day.") var videoSecondsPerDay: Int?
        @Option(help: "Seconds of video requested per UTC month.") var videoSecondsPerMonth: Int?
        @Option(help: "Tasks accepted and not yet ended.") var inFlight: Int?
        @Flag(help: "Remove every limit first (alone: the client becomes unlimited).") var clear = false

        func validate() throws {
            for value in [perDay, perMonth, videoSecondsPerDay, videoSecondsPerMonth, inFlight].compactMap({ $0 }) where value < 0 {
                throw ValidationError("limits are whole numbers ≥ 0")
            }
        }

        func run() async throws {
            let given: [BudgetLimit: Int?] = [.perDay: perDay, .perMonth: perMonth, .videoSecondsPerDay: videoSecondsPerDay,
                                              .videoSecondsPerMonth: videoSecondsPerMonth, .inFlight: inFlight]
            let budget = try await store.with { store -> ClientBudget? in
                guard let record = try await store.clients().first(where: { $0.id == clientID }) else { return nil }
                var budget = clear ? .unlimited : record.budget
                for case let (limit, value?) in given { budget[limit] = value }
                return try await store.setBudget(budget, clientID: clientID) ? budget : nil
            }
            guard let budget else { throw ValidationError("no client '\(clientID)'") }
            Console.line("\(clientID) budget: \(budget.text)")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a client's API key; its tasks still finish and deliver.")
        @OptionGroup var store: StoreOptions
        @Argument var clientID: String

        func run() async throws {
            guard try await store.with({ try await $0.revokeClient(id: clientID, at: Date()) }) else {
                throw ValidationError("no active client '\(clientID)'")
            }
            Console.line("revoked \(clientID)")
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a client a new signing secret; the old one keeps signing (both signatures are sent) during the grace period.")
        @OptionGroup var store: StoreOptions
        @Argument var clientID: String
        @Option(help: "How long the old secret stays valid.") var grace = "24h"

        func run() async throws {
            guard !clientID.hasPrefix(ClientBootstrap.configuredPrefix) else {
                throw ValidationError("\(clientID)'s secret comes from VEO_RELAY_WEBHOOK_SECRET: change it there; the old one keeps signing for 24 h")
            }
            let secret = WebhookSecret.generate().encoded
            let until = Date().addingTimeInterval(try DurationText.seconds(grace))
            guard try await store.with({ try await $0.rotateSecret(clientID: clientID, newSecret: secret, previousValidUntil: until) }) else {
                throw ValidationError("no active client '\(clientID)'")
            }
            Console.line("new signing secret: \(secret)")
            Console.line("the previous secret also signs until \(until.formatted(.iso8601))")
        }
    }
}
