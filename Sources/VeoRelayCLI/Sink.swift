import ArgumentParser
import Foundation
import Hummingbird
import VeoRelay
import VeoRelayDevTools

struct Sink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive webhooks, verify their Standard Webhooks signatures and print one line per event.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 9000

    @Option(help: "The whsec_… secret to verify with. [env: VEO_RELAY_WEBHOOK_SECRET]")
    var secret: String?

    @Option(help: "A whpk_… public key to verify v1a (Ed25519) signatures with, instead of or besides the secret.")
    var publicKey: String?

    @Option(help: "Append each raw delivery (headers and body) to this file as JSON lines.")
    var capture: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.bootstrap(label: "veo-relay.sink")
        let text = secret ?? Env.string("VEO_RELAY_WEBHOOK_SECRET")
        guard text != nil || publicKey != nil else {
            throw ValidationError("give the signing secret with --secret or VEO_RELAY_WEBHOOK_SECRET, or a public key with --public-key")
        }
        if let publicKey, !publicKey.hasPrefix(WebhookSigningKey.publicPrefix) { throw ValidationError("a public key starts with whpk_") }
        let sink = try WebhookSink(secret: try text.map { try WebhookSecret($0) }, publicKey: publicKey,
                                   captureFile: capture.map { URL(fileURLWithPath: $0) }) { delivery in
            Console.line(delivery.summary)
        }
        let router = Router()
        sink.addRoutes(to: router)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        Console.line("webhook sink on http://\(host):\(port)")
        try await app.runService()
    }
}
