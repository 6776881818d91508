import ArgumentParser
import VeoRelay

struct Secret: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a new random webhook signing secret (whsec_…), or with --ed25519 an Ed25519 signing key (whsk_…) and its public key.")

    @Flag(help: "An Ed25519 key for v1a signatures: the whsk_ key to configure, and the whpk_ key receivers verify with.")
    var ed25519 = false

    func run() {
        guard ed25519 else {
            print(WebhookSecret.generate().encoded)
            return
        }
        let key = WebhookSigningKey.generate()
        print(key.encoded)
        print(key.publicKey)
    }
}
