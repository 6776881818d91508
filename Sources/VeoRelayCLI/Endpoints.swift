import ArgumentParser
import Foundation
import VeoRelay

/// `veo-relay endpoints …`: an operator's view of every client's endpoints, on the database directly
/// (clients manage their own through `/v1/endpoints`).
struct Endpoints: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the endpoints where clients receive their events (besides each task's callback_url).",
        subcommands: [List.self, Create.self, Update.self, Delete.self, RotateSecret.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints with their health over the last 24 hours.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this client's.") var client: String?

        func run() async throws {
            let (endpoints, health) = try await store.with { store in
                (try await store.endpoints(scope: client.map(ClientScope.client) ?? .allClients),
                 try await store.endpointHealth(scope: client.map(ClientScope.client) ?? .allClients,
                                                since: Date().addingTimeInterval(-EndpointsController.healthWindow)))
            }
            for endpoint in endpoints {
                let figures = health[endpoint.id] ?? EndpointHealth()
                let rate = figures.successRate.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
                Console.line([endpoint.id, endpoint.clientID, endpoint.url,
                              endpoint.enabled ? "enabled" : "DISABLED" + (endpoint.disabledReason.map { " (\($0))" } ?? ""),
                              "events=\(endpoint.eventTypes.joined(separator: ","))", "24h=\(figures.attempts) attempts, \(rate) ok",
                              "rate=\(endpoint.maxRate.map { "\($0)/s" } ?? "unlimited")",
                              "signatures=\(endpoint.signatures.sorted().map(\.rawValue).joined(separator: ","))"]
                    .joined(separator: "  "))
                if let error = figures.lastError { Console.line("    last error: \(error)") }
            }
        }
    }

    /// The settings the shell sets, as the API's JSON fields, so both are checked by one parser.
    struct Settings: ParsableArguments {
        @Option(help: "Where to POST events.") var url: String?
        @Option(help: "A note for people.") var description: String?
        @Option(help: "Comma-separated event types (default every task event): \(EventTypeName.all.joined(separator: ", ")).")
        var events: String?
        @Option(help: "Deliveries per second at most, across every instance (0: unlimited).") var maxRate: Int?

        func json(extra: [String: JSONValue] = [:]) -> JSONValue {
            var fields = extra
            if let url { fields["url"] = .string(url) }
            if let description { fields["description"] = .string(description) }
            if let events { fields["event_types"] = .array(events.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) }) }
            if let maxRate { fields["max_rate"] = maxRate == 0 ? .null : .int(maxRate) }
            return .object(fields)
        }

        func parsed(creating: Bool, extra: [String: JSONValue] = [:]) throws -> EndpointSettings {
            do { return try EndpointSettings(parsing: json(extra: extra), creating: creating) } catch { throw ValidationError(error.message) }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an endpoint for a client; prints its signing secret (v1) or public key (v1a) once.",
            discussion: "The operator is trusted here: the address rules that the API applies to clients' URLs are not checked.")
        @OptionGroup var store: StoreOptions
        @Argument var clientID: String
        @OptionGroup var settings: Settings
        @Option(help: "v1 (HMAC), v1a (Ed25519) or v1,v1a.") var signatures = "v1"

        func run() async throws {
            let parsed = try settings.parsed(creating: true)
            let keys = SigningKeys.generate(try SignatureScheme.parse(signatures))
            let now = Date()
            let endpoint = parsed.applied(to: Endpoint(clientID: clientID, url: parsed.url ?? "", signatures: keys.schemes, now: now), at: now)
            try await store.with { store in
                guard try await store.clients().contains(where: { $0.id == clientID }) else { throw ValidationError("no client '\(clientID)'") }
                try await store.createEndpoint(endpoint, keys: keys)
            }
            Console.line("endpoint: \(endpoint.id) → \(endpoint.url)")
            Keys.show(keys, secretLabel: "signing secret:    ")
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an endpoint; --enable sends the events it held, --disable holds them.")
        @OptionGroup var store: StoreOptions
        @Argument var endpointID: String
        @OptionGroup var settings: Settings
        @Flag(help: "Enable it; the events it held are sent.") var enable = false
        @Flag(help: "Disable it; its events wait until it is enabled.") var disable = false

        func validate() throws {
            if enable && disable { throw ValidationError("--enable or --disable, not both") }
        }

        func run() async throws {
            let parsed = try settings.parsed(creating: false, extra: enable || disable ? ["enabled": .bool(enable)] : [:])
            let endpoint = try await store.with { store -> Endpoint in
                guard let endpoint = try await store.endpoint(id: endpointID, scope: .allClients) else { throw ValidationError("no endpoint '\(endpointID)'") }
                let changed = parsed.applied(to: endpoint, at: Date())
                _ = try await store.updateEndpoint(changed, now: Date())
                return changed
            }
            Console.line("\(endpoint.id) → \(endpoint.url), \(endpoint.enabled ? "enabled" : "disabled"), events \(endpoint.eventTypes.joined(separator: ","))")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an endpoint; its pending deliveries end failed.")
        @OptionGroup var store: StoreOptions
        @Argument var endpointID: String

        func run() async throws {
            guard try await store.with({ try await $0.deleteEndpoint(id: endpointID, scope: .allClients) }) else {
                throw ValidationError("no endpoint '\(endpointID)'")
            }
            Console.line("deleted \(endpointID)")
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give an endpoint new signing keys; the old ones keep signing (both signatures are sent) during the grace period.")
        @OptionGroup var store: StoreOptions
        @Argument var endpointID: String
        @Option(help: "How long the old keys stay valid.") var grace = "24h"
        @Option(help: "Signatures from now on: v1, v1a or v1,v1a (default: as before).") var signatures: String?

        func run() async throws {
            let until = Date().addingTimeInterval(try DurationText.seconds(grace))
            let keys = try await store.with { store -> SigningKeys in
                guard let endpoint = try await store.endpoint(id: endpointID, scope: .allClients) else { throw ValidationError("no endpoint '\(endpointID)'") }
                let keys = SigningKeys.generate(try signatures.map(SignatureScheme.parse) ?? endpoint.signatures)
                _ = try await store.rotateEndpointKeys(id: endpointID, scope: .allClients, keys: keys, previousValidUntil: until, now: Date())
                return keys
            }
            Keys.show(keys, secretLabel: "new signing secret:")
            Console.line("the previous keys also sign until \(until.formatted(.iso8601))")
        }
    }
}
