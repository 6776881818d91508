import Foundation

/// The upstream's generation request, exactly the fields `POST /v1/videos/generations` documents.
/// Optional fields stay `nil` when the client omitted them, so the relay forwards what it was sent
/// and the upstream applies its own defaults.
public struct GenerationRequest: Codable, Sendable, Equatable {
    public enum Model: String, Codable, Sendable, CaseIterable {
        case fast = "veo3.1-fast-official"
        case quality = "veo3.1-quality-official"
    }

    public var model: Model
    public var prompt: String
    public var negativePrompt: String?
    public var duration: Int?
    public var aspectRatio: String?
    public var resolution: String?
    public var firstFrameImage: String?
    public var lastFrameImage: String?
    public var seed: Int?
    public var generateAudio: Bool?
    public var personGeneration: String?
    public var resizeMode: String?
    public var enhancePrompt: Bool?

    public init(model: Model, prompt: String) {
        self.model = model
        self.prompt = prompt
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, prompt, duration, seed, resolution
        case negativePrompt = "negative_prompt"
        case aspectRatio = "aspect_ratio"
        case firstFrameImage = "first_frame_image"
        case lastFrameImage = "last_frame_image"
        case generateAudio = "generate_audio"
        case personGeneration = "person_generation"
        case resizeMode = "resize_mode"
        case enhancePrompt = "enhance_prompt"
    }

    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
}

/// What a client sends the relay: the upstream request plus where and how to call back.
public struct RelayRequest: Sendable, Equatable {
    public var generation: GenerationRequest
    /// Where webhooks go; nil for a task followed only through its event stream (`"delivery": "stream"`).
    public var callbackURL: String?
    /// Echoed verbatim in every webhook for this task.
    public var metadata: JSONValue?
    /// Which events to deliver; terminal events only unless the client asks for more.
    public var callbackEvents: Set<WebhookEventType>

    public init(generation: GenerationRequest, callbackURL: String?, metadata: JSONValue? = nil,
                callbackEvents: Set<WebhookEventType> = WebhookEventType.defaultSubscription) {
        self.generation = generation
        self.callbackURL = callbackURL
        self.metadata = metadata
        self.callbackEvents = callbackEvents
    }

    public static let relayFieldNames: Set<String> = ["callback_url", "metadata", "callback_events", "delivery"]
}

/// How a client follows a task: by webhook (the default) or only through its event stream.
public enum DeliveryMode: String, Sendable, CaseIterable {
    case webhook
    case stream
}
