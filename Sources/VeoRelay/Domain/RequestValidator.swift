import Foundation

/// A rule a request broke: which field (`param`, nil for the body as a whole) and why.
public struct ValidationFailure: Error, Sendable, Equatable {
    public var param: String?
    public var message: String

    public init(param: String?, _ message: String) {
        self.param = param
        self.message = message
    }
}

/// Size limits on what a client may send.
public struct RequestLimits: Sendable {
    public var maxPromptCharacters = 20_000
    public var maxMetadataBytes = 4_096
    public var maxURLLength = 2_048

    public init() {}
}

/// Checks a request body against every rule of the upstream's documented contract (and the
/// relay's own fields), so that nothing the upstream would reject is ever accepted and paid for.
public struct RequestValidator: Sendable {
    public var limits: RequestLimits

    public init(limits: RequestLimits = RequestLimits()) {
        self.limits = limits
    }

    static let durations: Set<Int> = [4, 6, 8]
    static let aspectRatios = ["16:9", "9:16"]
    static let resolutions = ["720p", "1080p", "4K"]
    static let personGenerations = ["allow_adult", "disallow"]
    static let resizeModes = ["pad", "crop"]
    static let seedRange = 0...4_294_967_295

    public func validate(body: Data) throws(ValidationFailure) -> RelayRequest {
        try validate(parse(body))
    }

    /// The body as JSON, or the 400 for a body that is not.
    public func parse(_ body: Data) throws(ValidationFailure) -> JSONValue {
        do {
            return try JSONValue.parse(body)
        } catch {
            throw ValidationFailure(param: nil, "The request body is not valid JSON.")
        }
    }

    /// A relay request: the upstream's fields plus `callback_url`, `callback_events`, `metadata` and
    /// `delivery`. A stream-only task (`"delivery": "stream"`) has no callback and subscribes to no webhook.
    public func validate(_ value: JSONValue) throws(ValidationFailure) -> RelayRequest {
        let reader = try FieldReader(value, known: GenerationRequest.fieldNames.union(RelayRequest.relayFieldNames))
        let generation = try generation(reader)
        let mode = try reader.oneOf("delivery", DeliveryMode.allCases.map(\.rawValue)).flatMap(DeliveryMode.init(rawValue:)) ?? .webhook
        let callbackURL = try url("callback_url", reader)
        let events = try callbackEvents(reader.fields["callback_events"])
        let metadata = try self.metadata(reader.fields["metadata"])
        switch mode {
        case .webhook:
            guard let callbackURL else {
                throw ValidationFailure(param: "callback_url", "callback_url is required unless delivery is 'stream'.")
            }
            return RelayRequest(generation: generation, callbackURL: callbackURL, metadata: metadata,
                                callbackEvents: events ?? WebhookEventType.defaultSubscription)
        case .stream:
            guard callbackURL == nil else {
                throw ValidationFailure(param: "callback_url", "callback_url must be omitted when delivery is 'stream'.")
            }
            guard events == nil else {
                throw ValidationFailure(param: "callback_events", "callback_events must be omitted when delivery is 'stream'.")
            }
            return RelayRequest(generation: generation, callbackURL: nil, metadata: metadata, callbackEvents: [])
        }
    }

    /// An upstream request alone, as the upstream itself checks it.
    public func validateGeneration(_ value: JSONValue) throws(ValidationFailure) -> GenerationRequest {
        try generation(FieldReader(value, known: GenerationRequest.fieldNames))
    }

    private func generation(_ reader: FieldReader) throws(ValidationFailure) -> GenerationRequest {
        let modelName = try reader.requiredString("model")
        guard let model = GenerationRequest.Model(rawValue: modelName) else {
            throw ValidationFailure(param: "model", "model must be one of \(Self.list(GenerationRequest.Model.allCases.map(\.rawValue))).")
        }
        let prompt = try reader.requiredString("prompt")
        guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationFailure(param: "prompt", "prompt must not be empty.")
        }
        guard prompt.count <= limits.maxPromptCharacters else {
            throw ValidationFailure(param: "prompt", "prompt must be at most \(limits.maxPromptCharacters) characters.")
        }

        var request = GenerationRequest(model: model, prompt: prompt)
        request.negativePrompt = try reader.string("negative_prompt")
        request.duration = try reader.integer("duration")
        if let duration = request.duration, !Self.durations.contains(duration) {
            throw ValidationFailure(param: "duration", "duration must be 4, 6 or 8 (seconds).")
        }
        request.aspectRatio = try reader.oneOf("aspect_ratio", Self.aspectRatios)
        request.resolution = try reader.oneOf("resolution", Self.resolutions)
        request.firstFrameImage = try url("first_frame_image", reader)
        request.lastFrameImage = try url("last_frame_image", reader)
        if request.lastFrameImage != nil, request.firstFrameImage == nil {
            throw ValidationFailure(param: "last_frame_image", "last_frame_image is only allowed together with first_frame_image.")
        }
        request.seed = try reader.integer("seed")
        if let seed = request.seed, !Self.seedRange.contains(seed) {
            throw ValidationFailure(param: "seed", "seed must be an integer from 0 to 4294967295.")
        }
        request.generateAudio = try reader.boolean("generate_audio")
        request.personGeneration = try reader.oneOf("person_generation", Self.personGenerations)
        request.resizeMode = try reader.oneOf("resize_mode", Self.resizeModes)
        if request.resizeMode != nil, request.firstFrameImage == nil {
            throw ValidationFailure(param: "resize_mode", "resize_mode applies to image-to-video only: send it with first_frame_image.")
        }
        request.enhancePrompt = try reader.boolean("enhance_prompt")
        if request.enhancePrompt == false {
            throw ValidationFailure(param: "enhance_prompt", "enhance_prompt may only be true; omit it to leave it unset.")
        }
        return request
    }

    private func url(_ name: String, _ reader: FieldReader) throws(ValidationFailure) -> String? {
        guard let text = try reader.string(name) else { return nil }
        guard text.utf8.count <= limits.maxURLLength else {
            throw ValidationFailure(param: name, "\(name) must be at most \(limits.maxURLLength) bytes.")
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty
        else {
            throw ValidationFailure(param: name, "\(name) must be an absolute http(s) URL.")
        }
        return text
    }

    private func metadata(_ value: JSONValue?) throws(ValidationFailure) -> JSONValue? {
        guard let value else { return nil }
        guard case .object = value else {
            throw ValidationFailure(param: "metadata", "metadata must be a JSON object, not \(value.typeName).")
        }
        let size = (try? value.canonicalData().count) ?? Int.max
        guard size <= limits.maxMetadataBytes else {
            throw ValidationFailure(param: "metadata", "metadata must be at most \(limits.maxMetadataBytes) bytes when encoded as JSON.")
        }
        return value
    }

    private func callbackEvents(_ value: JSONValue?) throws(ValidationFailure) -> Set<WebhookEventType>? {
        guard let value else { return nil }
        return try Self.names(value, param: "callback_events", allowed: WebhookEventType.allCases.map(\.rawValue), WebhookEventType.init(rawValue:))
    }

    /// A non-empty JSON array of names, each one that `parse` accepts (a field like `callback_events`).
    static func names<Name: Hashable>(_ value: JSONValue, param: String, allowed: [String],
                                      _ parse: (String) -> Name?) throws(ValidationFailure) -> Set<Name> {
        guard case .array(let items) = value, !items.isEmpty else {
            throw ValidationFailure(param: param, "\(param) must be a non-empty array of \(list(allowed)).")
        }
        var names: Set<Name> = []
        for item in items {
            guard let name = item.stringValue.flatMap(parse) else {
                throw ValidationFailure(param: param, "\(param) may only contain \(list(allowed)).")
            }
            names.insert(name)
        }
        return names
    }

    static func list(_ values: [String]) -> String {
        values.map { "'\($0)'" }.joined(separator: ", ")
    }
}

/// Typed access to the fields of a JSON object, failing with the field's name.
/// An explicit `null` is refused: the upstream documents omission, not null, for "unset".
private struct FieldReader {
    let fields: [String: JSONValue]

    /// Accepts a JSON object whose every key is in `known`.
    init(_ value: JSONValue, known: Set<String>) throws(ValidationFailure) {
        guard let fields = value.objectValue else {
            throw ValidationFailure(param: nil, "The request body must be a JSON object.")
        }
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw ValidationFailure(param: unknown, "Unknown field '\(unknown)'.")
        }
        self.fields = fields
    }

    func requiredString(_ name: String) throws(ValidationFailure) -> String {
        guard let value = try string(name) else {
            throw ValidationFailure(param: name, "\(name) is required.")
        }
        return value
    }

    func string(_ name: String) throws(ValidationFailure) -> String? {
        guard let value = fields[name] else { return nil }
        guard case .string(let text) = value else { throw typeError(name, "a string", value) }
        return text
    }

    func integer(_ name: String) throws(ValidationFailure) -> Int? {
        guard let value = fields[name] else { return nil }
        guard case .int(let number) = value else { throw typeError(name, "a JSON integer", value) }
        return number
    }

    func boolean(_ name: String) throws(ValidationFailure) -> Bool? {
        guard let value = fields[name] else { return nil }
        guard case .bool(let flag) = value else { throw typeError(name, "a boolean", value) }
        return flag
    }

    func oneOf(_ name: String, _ allowed: [String]) throws(ValidationFailure) -> String? {
        guard let text = try string(name) else { return nil }
        guard allowed.contains(text) else {
            throw ValidationFailure(param: name, "\(name) must be one of \(RequestValidator.list(allowed)).")
        }
        return text
    }

    private func typeError(_ name: String, _ expected: String, _ value: JSONValue) -> ValidationFailure {
        ValidationFailure(param: name, "\(name) must be \(expected), not \(value.typeName).")
    }
}
