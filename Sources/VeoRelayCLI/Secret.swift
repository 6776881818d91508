import ArgumentParser
import VeoRelay

struct Secret: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a new random webhook signing secret (whsec_…).")

    func run() {
        print(WebhookSecret.generate().encoded)
    }
}
