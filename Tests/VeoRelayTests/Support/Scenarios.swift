import Foundation
import Testing

/// The upstream document's five request scenarios, verbatim.
enum Scenarios {
    static let all: [(name: String, json: String)] = [
        ("text-to-video, basic", """
        {"model": "veo3.1-fast-official", "prompt": "a golden retriever running on the beach, sunset, cinematic"}
        """),
        ("text-to-video, every parameter", """
        {"model": "veo3.1-quality-official",
         "prompt": "a cinematic close-up of a ragdoll cat slowly walking through a sunlit living room",
         "negative_prompt": "blurry, low quality, watermark, text", "duration": 8, "aspect_ratio": "16:9",
         "resolution": "1080p", "seed": 12345, "generate_audio": true, "person_generation": "disallow", "enhance_prompt": true}
        """),
        ("image-to-video, first frame", """
        {"model": "veo3.1-fast-official", "prompt": "the cat slowly walks forward and looks around",
         "first_frame_image": "https://example.com/cat.png", "duration": 8, "resolution": "720p"}
        """),
        ("image-to-video, first and last frame", """
        {"model": "veo3.1-quality-official", "prompt": "smooth cinematic transition from the first frame to the last frame",
         "first_frame_image": "https://example.com/frame-start.png", "last_frame_image": "https://example.com/frame-end.png",
         "duration": 8, "resolution": "1080p"}
        """),
        ("with audio", """
        {"model": "veo3.1-quality-official", "prompt": "a busy coffee shop with people chatting and barista making latte art",
         "duration": 8, "generate_audio": true, "aspect_ratio": "16:9"}
        """),
    ]

    /// A scenario's body with the relay's callback added.
    static func relayBody(_ json: String, callbackURL: String = "https://hooks.example.com/veo") -> Data {
        var text = json.trimmingCharacters(in: .whitespacesAndNewlines)
        text.removeLast()
        return Data((text + #", "callback_url": "\#(callbackURL)"}"#).utf8)
    }

    /// One request breaking one rule, and the `param` the 400 must name.
    struct Invalid: Sendable, CustomTestStringConvertible {
        var rule: String
        var fields: String
        var param: String?

        var testDescription: String { rule }

        var body: Data { Data("{\(fields)}".utf8) }
    }

    static let base = #""model": "veo3.1-fast-official", "prompt": "a cat", "callback_url": "https://hooks.example.com/veo""#
    static let noCallback = #""model": "veo3.1-fast-official", "prompt": "a cat""#

    static let invalid: [Invalid] = [
        Invalid(rule: "model is required", fields: #""prompt": "a cat", "callback_url": "https://h.example/x""#, param: "model"),
        Invalid(rule: "model must be a known model", fields: #""model": "veo3", "prompt": "a", "callback_url": "https://h.example/x""#, param: "model"),
        Invalid(rule: "model must be a string", fields: #""model": 3, "prompt": "a", "callback_url": "https://h.example/x""#, param: "model"),
        Invalid(rule: "prompt is required", fields: #""model": "veo3.1-fast-official", "callback_url": "https://h.example/x""#, param: "prompt"),
        Invalid(rule: "prompt must not be blank", fields: #""model": "veo3.1-fast-official", "prompt": "  ", "callback_url": "https://h.example/x""#, param: "prompt"),
        Invalid(rule: "negative_prompt must be a string", fields: base + #", "negative_prompt": ["blurry"]"#, param: "negative_prompt"),
        Invalid(rule: "duration must not be a string", fields: base + #", "duration": "8""#, param: "duration"),
        Invalid(rule: "duration must be an integer", fields: base + #", "duration": 7.5"#, param: "duration"),
        Invalid(rule: "duration must be 4, 6 or 8", fields: base + #", "duration": 5"#, param: "duration"),
        Invalid(rule: "aspect_ratio must be 16:9 or 9:16", fields: base + #", "aspect_ratio": "4:3""#, param: "aspect_ratio"),
        Invalid(rule: "resolution must be 720p, 1080p or 4K", fields: base + #", "resolution": "480p""#, param: "resolution"),
        Invalid(rule: "first_frame_image must be an http(s) URL", fields: base + #", "first_frame_image": "ftp://example.com/a.png""#, param: "first_frame_image"),
        Invalid(rule: "first_frame_image must be absolute", fields: base + #", "first_frame_image": "/cat.png""#, param: "first_frame_image"),
        Invalid(rule: "last_frame_image must be a URL", fields: base + #", "first_frame_image": "https://e.example/a.png", "last_frame_image": "not a url""#, param: "last_frame_image"),
        Invalid(rule: "last_frame_image only with first_frame_image", fields: base + #", "last_frame_image": "https://e.example/b.png""#, param: "last_frame_image"),
        Invalid(rule: "seed must be an integer", fields: base + #", "seed": "42""#, param: "seed"),
        Invalid(rule: "seed must not be negative", fields: base + #", "seed": -1"#, param: "seed"),
        Invalid(rule: "seed must be at most 4294967295", fields: base + #", "seed": 4294967296"#, param: "seed"),
        Invalid(rule: "generate_audio must be a boolean", fields: base + #", "generate_audio": "yes""#, param: "generate_audio"),
        Invalid(rule: "person_generation must be allow_adult or disallow", fields: base + #", "person_generation": "allow_all""#, param: "person_generation"),
        Invalid(rule: "resize_mode must be pad or crop", fields: base + #", "first_frame_image": "https://e.example/a.png", "resize_mode": "stretch""#, param: "resize_mode"),
        Invalid(rule: "resize_mode only for image-to-video", fields: base + #", "resize_mode": "pad""#, param: "resize_mode"),
        Invalid(rule: "enhance_prompt may only be true", fields: base + #", "enhance_prompt": false"#, param: "enhance_prompt"),
        Invalid(rule: "enhance_prompt must be a boolean", fields: base + #", "enhance_prompt": "true""#, param: "enhance_prompt"),
        Invalid(rule: "null is not a value", fields: base + #", "seed": null"#, param: "seed"),
        Invalid(rule: "unknown fields are named", fields: base + #", "fps": 24"#, param: "fps"),
        Invalid(rule: "callback_url is required", fields: noCallback, param: "callback_url"),
        Invalid(rule: "callback_url must be http(s)", fields: noCallback + #", "callback_url": "mailto:me@example.com""#, param: "callback_url"),
        Invalid(rule: "callback_url must have a host", fields: noCallback + #", "callback_url": "https://""#, param: "callback_url"),
        Invalid(rule: "metadata must be an object", fields: base + #", "metadata": [1, 2]"#, param: "metadata"),
        Invalid(rule: "metadata must be at most 4 KiB", fields: base + #", "metadata": {"blob": "\#(String(repeating: "x", count: 4_100))"}"#, param: "metadata"),
    ]
}
