import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import VeoRelay

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a generation to a relay; with --wait, follow it until it ends.",
        discussion: "Fields come from --file (a JSON request) and are overridden by the flags.")

    @Option(help: "Relay base URL. [env: VEO_RELAY_URL] (default: http://127.0.0.1:8080)")
    var relay: String?

    @Option(help: "Relay API key. [env: VEO_RELAY_API_KEY]")
    var key: String?

    @Option(help: "A JSON file with the request body.")
    var file: String?

    @Option var model: String?
    @Option var prompt: String?
    @Option var negativePrompt: String?
    @Option var duration: Int?
    @Option var aspectRatio: String?
    @Option var resolution: String?
    @Option var firstFrameImage: String?
    @Option var lastFrameImage: String?
    @Option var seed: Int?
    @Option var generateAudio: Bool?
    @Option var personGeneration: String?
    @Option var resizeMode: String?
    @Option var enhancePrompt: Bool?

    @Option(help: "Where the relay should POST the result.")
    var callbackURL: String?

    @Option(help: "A JSON object echoed in every webhook.")
    var metadata: String?

    @Flag(help: "Show progress until the task ends; exits non-zero if it failed.")
    var wait = false

    func body() throws -> Data {
        var fields: [String: JSONValue] = [:]
        if let file {
            guard let object = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: file))).objectValue else {
                throw ValidationError("\(file) must hold a JSON object")
            }
            fields = object
        }
        let strings: [(String, String?)] = [
            ("model", model), ("prompt", prompt), ("negative_prompt", negativePrompt), ("aspect_ratio", aspectRatio),
            ("resolution", resolution), ("first_frame_image", firstFrameImage), ("last_frame_image", lastFrameImage),
            ("person_generation", personGeneration), ("resize_mode", resizeMode), ("callback_url", callbackURL),
        ]
        for case let (name, value?) in strings { fields[name] = .string(value) }
        for case let (name, value?) in [("duration", duration), ("seed", seed)] { fields[name] = .int(value) }
        for case let (name, value?) in [("generate_audio", generateAudio), ("enhance_prompt", enhancePrompt)] { fields[name] = .bool(value) }
        if let metadata { fields["metadata"] = try JSONValue.parse(Data(metadata.utf8)) }
        return try JSONCoding.encode(JSONValue.object(fields))
    }

    func run() async throws {
        let base = relay ?? Env.string("VEO_RELAY_URL") ?? "http://127.0.0.1:8080"
        guard let key = key ?? Env.string("VEO_RELAY_API_KEY") else {
            throw ValidationError("give the relay API key with --key or VEO_RELAY_API_KEY")
        }
        let client = RelayHTTP(base: base, key: key)
        let (status, answer) = try await client.send(.POST, "/v1/videos/generations", body: try body())
        guard status == 200, let taskID = answer["data"]?.arrayFirst?["task_id"]?.stringValue else {
            print(String(decoding: try JSONCoding.encode(answer), as: UTF8.self))
            throw ExitCode.failure
        }
        print(taskID)
        guard wait else { return }
        var last = ""
        while true {
            let (_, view) = try await client.send(.GET, "/v1/tasks/\(taskID)", body: nil)
            let data = view["data"]
            let status = data?["status"]?.stringValue ?? "?"
            let callback = data?["callback"]?["state"]?.stringValue ?? "?"
            let line = "status=\(status) progress=\(ExternalNumber.boundedInteger(data?["progress"]?.numberValue, maximum: 100) ?? 0)% callback=\(callback)"
            if line != last { print(line) }
            last = line
            if ["completed", "failed", "cancelled"].contains(status), callback != "waiting", callback != "pending" {
                for link in VideoLink.links(from: data?["result"]) { print("video: \(link.url) (expires \(link.expiresAt.map(String.init) ?? "?"))") }
                if let message = data?["error"]?["message"]?.stringValue { print("error: \(message)") }
                if status != "completed" { throw ExitCode.failure }
                return
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}

/// A tiny JSON client for the relay's API.
struct RelayHTTP {
    let base: String
    let key: String

    func send(_ method: HTTPMethod, _ path: String, body: Data?) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), (try? JSONValue.parse(Data(buffer: bytes))) ?? .null)
    }
}

extension JSONValue {
    var arrayFirst: JSONValue? {
        if case .array(let items) = self { items.first } else { nil }
    }
}
