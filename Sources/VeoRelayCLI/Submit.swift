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

    @Option(help: "'webhook' (default; needs --callback-url) or 'stream' (no webhook: follow the task with --wait).")
    var delivery: String?

    @Flag(help: """
        Follow the task through its event stream until it ends (a progress bar on a terminal, plain lines otherwise), \
        then until its webhook is settled; polls the task instead only if the stream cannot be opened. Exits non-zero if the task failed.
        """)
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
            ("person_generation", personGeneration), ("resize_mode", resizeMode), ("callback_url", callbackURL), ("delivery", delivery),
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
        guard status == 200, let entry = answer["data"]?.arrayFirst, let taskID = entry["task_id"]?.stringValue else {
            Console.line(String(decoding: try JSONCoding.encode(answer), as: UTF8.self))
            throw ExitCode.failure
        }
        Console.line(taskID)
        guard wait else { return }
        let follower = TaskFollower(client: client, taskID: taskID, display: ProgressDisplay(terminal: isatty(STDOUT_FILENO) == 1))
        let succeeded = try await follower.follow(watchURL: entry["watch_url"]?.stringValue)
        if !succeeded { throw ExitCode.failure }
    }
}

/// Follows one task for `submit --wait`: through its event stream, or by polling the read API when
/// the stream cannot be opened; then, for a task with a callback, until its webhook is settled.
struct TaskFollower {
    let client: RelayHTTP
    let taskID: String
    let display: ProgressDisplay
    static let terminalStatuses: Set<String> = ["completed", "failed", "cancelled"]

    /// Whether the task succeeded.
    func follow(watchURL: String?) async throws -> Bool {
        var final: JSONValue? = nil
        if let watchURL { final = await stream(watchURL) }
        if final == nil { final = try await poll() }
        guard let final else { return false }
        display.finish(final)
        try await settleCallback()
        return final["status"]?.stringValue == "completed"
    }

    /// The terminal event's task data, or nil when the stream could not be opened.
    func stream(_ url: String) async -> JSONValue? {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "text/event-stream")
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .hours(4)), response.status == .ok else { return nil }
        var parser = ServerSentEventParser()
        do {
            for try await chunk in response.body {
                for message in parser.feed(String(buffer: chunk)) {
                    guard let event = message.event, let data = message.data.flatMap({ try? JSONValue.parse(Data($0.utf8)) })?["data"] else {
                        continue
                    }
                    display.show(event: event, status: data["status"]?.stringValue ?? "?", progress: Self.percent(data["progress"]))
                    if event == WebhookEventType.taskSucceeded.rawValue || event == WebhookEventType.taskFailed.rawValue { return data }
                }
            }
        } catch {
            display.note("the event stream broke (\(error)); polling instead")
        }
        return nil
    }

    static func percent(_ value: JSONValue?) -> Int {
        ExternalNumber.boundedInteger(value?.numberValue, maximum: 100) ?? 0
    }

    /// Polls the task until it ends; returns its data in the webhook's shape (`videos`, `error`).
    func poll() async throws -> JSONValue {
        while true {
            let data = try await client.send(.GET, "/v1/tasks/\(taskID)", body: nil).1["data"] ?? .null
            let status = data["status"]?.stringValue ?? "?"
            display.show(event: "poll", status: status, progress: Self.percent(data["progress"]))
            if Self.terminalStatuses.contains(status) {
                let videos = VideoLink.links(from: data["result"]).map { JSONValue.object(["url": .string($0.url)]) }
                return .object(["status": .string(status), "videos": .array(videos), "error": data["error"] ?? .null])
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Waits until the task's webhook is delivered or given up (tasks without a callback have none).
    func settleCallback() async throws {
        while true {
            let callback = try await client.send(.GET, "/v1/tasks/\(taskID)", body: nil).1["data"]?["callback"]
            guard let state = callback?["state"]?.stringValue else { return }
            if !["waiting", "pending"].contains(state) {
                display.note("callback=\(state)")
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// Progress for `submit --wait`: a bar redrawn in place on a terminal, one line per change otherwise.
/// Written unbuffered, so a pipe sees each line as it happens.
struct ProgressDisplay {
    let terminal: Bool

    func show(event: String, status: String, progress: Int) {
        if terminal {
            let filled = max(0, min(30, progress * 30 / 100))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
            let line = "[\(bar)] \(String(format: "%3d", progress))% \(status)"
            FileHandle.standardOutput.write(Data(("\r" + line.padding(toLength: 60, withPad: " ", startingAt: 0)).utf8))
        } else {
            Console.line("event=\(event) status=\(status) progress=\(progress)%")
        }
    }

    func finish(_ data: JSONValue) {
        if terminal { Console.line("") }
        if case .array(let videos)? = data["videos"] {
            for video in videos { Console.line("video: \(video["url"]?.stringValue ?? "?")") }
        }
        if let message = data["error"]?["message"]?.stringValue { Console.line("error: \(message)") }
    }

    func note(_ text: String) {
        Console.line(text)
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
