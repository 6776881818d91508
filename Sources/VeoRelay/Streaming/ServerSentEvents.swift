/// One Server-Sent Events message as a client reads it.
public struct ServerSentEvent: Sendable, Equatable {
    public var id: String?
    public var event: String?
    public var data: String?
    /// The text of a comment line (`: …`), such as a heartbeat.
    public var comment: String?

    public init(id: String? = nil, event: String? = nil, data: String? = nil, comment: String? = nil) {
        self.id = id
        self.event = event
        self.data = data
        self.comment = comment
    }
}

/// Splits a `text/event-stream` body, fed in chunks as they arrive, into messages (the WHATWG
/// format the relay writes: `field: value` lines, a blank line ending each message).
public struct ServerSentEventParser: Sendable {
    private var pending = ""

    public init() {}

    /// The messages completed by `chunk`.
    public mutating func feed(_ chunk: String) -> [ServerSentEvent] {
        pending += chunk.replacingOccurrences(of: "\r\n", with: "\n")
        var messages: [ServerSentEvent] = []
        while let end = pending.range(of: "\n\n") {
            messages.append(Self.parse(pending[..<end.lowerBound]))
            pending = String(pending[end.upperBound...])
        }
        return messages
    }

    static func parse(_ block: Substring) -> ServerSentEvent {
        var message = ServerSentEvent()
        for line in block.split(separator: "\n") {
            if line.hasPrefix(":") {
                message.comment = String(line.dropFirst().drop { $0 == " " })
                continue
            }
            let parts = line.split(separator: ":", maxSplits: 1)
            let value = parts.count > 1 ? String(parts[1].dropFirst(parts[1].hasPrefix(" ") ? 1 : 0)) : ""
            switch parts[0] {
            case "id": message.id = value
            case "event": message.event = value
            case "data": message.data = message.data.map { $0 + "\n" + value } ?? value
            default: break
            }
        }
        return message
    }
}
