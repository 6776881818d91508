import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import VeoRelay

/// A webhook receiver for demos and manual tests: verifies every delivery's Standard Webhooks
/// signature, reports it as one line, and optionally appends the raw delivery to a capture file
/// (JSON lines) so third-party verifiers can check the exact bytes later.
public struct WebhookSink: Sendable {
    public struct Delivery: Sendable {
        public var id: String
        public var timestamp: String
        public var signature: String
        public var body: Data
        public var verified: Bool

        /// A one-line summary: verification, event type, task, status and what came with it.
        public var summary: String {
            let json = try? JSONValue.parse(body)
            let data = json?["data"]
            var parts = [verified ? "✔ verified" : "✘ BAD SIGNATURE", id, json?["type"]?.stringValue ?? "?",
                         data?["task_id"]?.stringValue ?? "?", "status=\(data?["status"]?.stringValue ?? "?")"]
            let videos = VideoLink.links(from: .object(["videos": data?["videos"] ?? .null]))
            if let first = videos.first { parts.append("video=\(first.url)") }
            if let message = data?["error"]?["message"]?.stringValue { parts.append("error=\"\(message)\"") }
            return parts.joined(separator: "  ")
        }
    }

    let secret: WebhookSecret?
    /// A `whpk_` key: `v1a` signatures verify with it alone.
    let publicKey: String?
    let capture: CaptureLog?
    let report: @Sendable (Delivery) -> Void

    /// Verifies with `secret` (`v1`), `publicKey` (`v1a`), or either when both are given.
    public init(secret: WebhookSecret?, publicKey: String? = nil, captureFile: URL?, report: @escaping @Sendable (Delivery) -> Void) throws {
        self.secret = secret
        self.publicKey = publicKey
        self.capture = try captureFile.map(CaptureLog.init)
        self.report = report
    }

    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("**") { request, _ in
            var request = request
            let body = Data(buffer: try await request.collectBody(upTo: 1 << 20))
            let header = { (name: String) in HTTPField.Name(name).flatMap { request.headers[$0] } ?? "" }
            let delivery = Delivery(id: header("webhook-id"), timestamp: header("webhook-timestamp"),
                                    signature: header("webhook-signature"), body: body,
                                    verified: verify(id: header("webhook-id"), timestamp: header("webhook-timestamp"),
                                                     signature: header("webhook-signature"), body: body))
            try capture?.append(delivery)
            report(delivery)
            return Response(status: delivery.verified ? .noContent : .unauthorized)
        }
    }

    private func verify(id: String, timestamp: String, signature: String, body: Data) -> Bool {
        guard let seconds = Int(timestamp) else { return false }
        let byHMAC = secret.map { (try? WebhookSignature.verify(id: id, timestamp: seconds, body: body, header: signature, secret: $0)) != nil }
        let byKey = publicKey.map { (try? WebhookSignature.verify(id: id, timestamp: seconds, body: body, header: signature, publicKey: $0)) != nil }
        return byHMAC == true || byKey == true
    }

}

/// Appends deliveries as JSON lines; one writer at a time so concurrent deliveries never interleave.
final class CaptureLog: Sendable {
    private let handle: Mutex<FileHandle>

    init(_ url: URL) throws {
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        self.handle = Mutex(handle)
    }

    func append(_ delivery: WebhookSink.Delivery) throws {
        let record: [String: JSONValue] = [
            "headers": .object(["webhook-id": .string(delivery.id), "webhook-timestamp": .string(delivery.timestamp),
                                "webhook-signature": .string(delivery.signature)]),
            "body_base64": .string(delivery.body.base64EncodedString()),
        ]
        var line = try JSONCoding.encode(record)
        line.append(0x0A)
        try handle.withLock { try $0.write(contentsOf: line) }
    }
}
