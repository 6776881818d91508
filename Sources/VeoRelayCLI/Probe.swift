import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore

/// A health check for images without curl (the Dockerfile's `HEALTHCHECK`): exits 0 on a 2xx.
struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "GET a relay URL such as /healthz or /readyz; exit 0 on a 2xx answer, 1 otherwise.")

    @Argument(help: "The URL to check.")
    var url = "http://127.0.0.1:8080/healthz"

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int64 = 3

    func run() async throws {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(timeout))
            let body = String(buffer: try await response.body.collect(upTo: 4_096))
            guard (200..<300).contains(response.status.code) else {
                Console.error("\(url): \(response.status.code) \(body)")
                throw ExitCode.failure
            }
            Console.line(body)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Console.error("\(url): \(error)")
            throw ExitCode.failure
        }
    }
}
