import ArgumentParser
import Foundation
import VeoRelay

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage relay clients: their API keys (stored hashed) and webhook signing secrets.",
        subcommands: [Create.self, List.self, Budget.self, Revoke.self, RotateSecret.self, PublicKeys.self, OwnUpstreamKey.self])

    /// The credentials' public parts as the shell shows them: the HMAC secret (shown once) and the Ed25519 public key.
    static func show(_ keys: SigningKeys, secretLabel: String) {
        for credential in keys.credentials {
            switch credential {
            case .hmac(let secret): Console.line("\(secretLabel) \(secret.encoded)")
            case .ed25519(let key): Console.line("public key (v1a):   \(key.publicKey)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a client; prints its API key and signing secret once.")
        @OptionGroup var store: StoreOptions
        @Option(help: "A name for the client.") var name: String
        @Option(help: "Its limits, e.g. per_day=500,in_flight=50 (change them later with `keys budget`). [env: VEO_RELAY_DEFAULT_BUDGET] (default: unlimited)")
        var budget: String?
        @Option(help: "Signatures on its webhooks: v1 (HMAC, a shared secret), v1a (Ed25519, a public key) or v1,v1a.")
        var signatures = "v1"

        func run() async throws {
            let budget = try ClientBudget(parsing: budget ?? Env.string("VEO_RELAY_DEFAULT_BUDGET") ?? "")
            let keys = SigningKeys.generate(try SignatureScheme.parse(signatures))
            let key = APIKey.generate()
            let client = Client(id: Identifier.make(prefix: "cl_"), name: name, signingSecret: keys.stored)
            try await store.with({ try await $0.upsertClient(client, keyHash: APIKey.hash(key), now: Date(), budget: budget) })
            Console.line("client:             \(client.id) (\(name))")
            Console.line("budget:             \(budget.text)")
            Console.line("API key:            \(key)")
            Keys.show(keys, secretLabel: "signing secret:    ")
            Console.line("The key and secret are shown only now; the relay keeps a hash of the key. Public keys: `keys public-keys`.")
        }
    }

    struct OwnUpstreamKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upstream",
            abstract: "Give a client its own upstream key (read from standard input): its tasks are then sent and polled with it only.",
            discussion: "The same as `upstream keys add NAME --client CLIENT`; list, disable and remove it with `upstream keys`.")
        @OptionGroup var store: StoreOptions
        @Argument var clientID: String
        @Option(help: "The key's name (default: the client's id).") var name: String?
        @OptionGroup var key: UpstreamKeyOptions

        func validate() throws {
            try UpstreamKeyOptions.check(name: name ?? clientID)
        }

        func run() async throws {
            try await Upstream.Add.add(try key.read(name: name ?? clientID, clientID: clientID), store: store)
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
        @Option(help: "Signatures from now on: v1 (HMAC), v1a (Ed25519) or v1,v1a.") var signatures = "v1"

        func run() async throws {
            guard !clientID.hasPrefix(ClientBootstrap.configuredPrefix) else {
                throw ValidationError("\(clientID)'s secret comes from VEO_RELAY_WEBHOOK_SECRET: change it there; the old one keeps signing for 24 h")
            }
            let keys = SigningKeys.generate(try SignatureScheme.parse(signatures))
            let until = Date().addingTimeInterval(try DurationText.seconds(grace))
            guard try await store.with({ try await $0.rotateSecret(clientID: clientID, newSecret: keys.stored, previousValidUntil: until) }) else {
                throw ValidationError("no active client '\(clientID)'")
            }
            Keys.show(keys, secretLabel: "new signing secret:")
            Console.line("the previous secret (or key) also signs until \(until.formatted(.iso8601))")
        }
    }

    struct PublicKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the whpk_ public keys that verify a client's v1a signatures (its callbacks' and each endpoint's).")
        @OptionGroup var store: StoreOptions
        @Argument var clientID: String

        func run() async throws {
            let keys = try await store.with { try await $0.publishedKeys(clientID: clientID, now: Date()) }
            guard !keys.isEmpty else { Console.line("\(clientID) signs with no public key (v1 only, or no such client)"); return }
            for key in keys {
                var line = "\(key.endpointID ?? "callbacks")  \(key.publicKey)  \(key.state)"
                if let until = key.expiresAt { line += " until \(until.formatted(.iso8601))" }
                Console.line(line)
            }
        }
    }
}
