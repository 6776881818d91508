import Foundation
import Synchronization
import Testing
@testable import VeoRelay

/// A small deterministic generator, so a failing input can be reproduced from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum RandomJSON {
    static let interesting: [JSONValue] = [
        .null, .bool(true), .bool(false), .int(0), .int(-1), .int(8), .int(4_294_967_296), .int(Int.max), .int(Int.min),
        .double(8.5), .double(-0.0), .double(1e308), .string(""), .string(" "), .string("8"), .string("https://"),
        .string("http://127.0.0.1/"), .string("veo3.1-fast-official"), .string(String(repeating: "é", count: 300)),
        .string("\u{0000}\u{FFFF}"), .array([]), .object([:]),
    ]
    static let names = Array(GenerationRequest.fieldNames.union(RelayRequest.relayFieldNames)) + ["", "__proto__", "x"]

    static func value(depth: Int = 0, using rng: inout SplitMix64) -> JSONValue {
        switch Int.random(in: 0..<(depth > 2 ? 4 : 6), using: &rng) {
        case 0: return interesting.randomElement(using: &rng)!
        case 1: return .int(Int.random(in: Int.min...Int.max, using: &rng))
        case 2: return .double(Double.random(in: -1e6...1e6, using: &rng))
        case 3: return .string(String((0..<Int.random(in: 0..<12, using: &rng)).map { _ in Character(UnicodeScalar(UInt8.random(in: 32...126, using: &rng))) }))
        case 4: return .array((0..<Int.random(in: 0..<4, using: &rng)).map { _ in value(depth: depth + 1, using: &rng) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0..<5, using: &rng) { object[names.randomElement(using: &rng)!] = value(depth: depth + 1, using: &rng) }
            return .object(object)
        }
    }

    /// A valid request with one random change: a field replaced, removed or added, or the whole body.
    static func mutation(of valid: [String: JSONValue], using rng: inout SplitMix64) -> JSONValue {
        var fields = valid
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: fields[fields.keys.sorted().randomElement(using: &rng)!] = value(using: &rng)
        case 1: fields.removeValue(forKey: fields.keys.sorted().randomElement(using: &rng)!)
        case 2: fields[names.randomElement(using: &rng)!] = value(using: &rng)
        default: return value(using: &rng)
        }
        return .object(fields)
    }
}

@Suite("Validator fuzzing", .stopsWhatItStarts)
struct FuzzTests {
    static let valid: [String: JSONValue] = try! JSONValue.parse(Scenarios.relayBody(Scenarios.all[1].json)).objectValue!

    @Test(arguments: 0..<4)
    func randomAndMutatedBodiesNeverCrashTheValidator(_ seed: UInt64) {
        var rng = SplitMix64(state: seed)
        let validator = RequestValidator()
        var accepted = 0, refused = 0
        for _ in 0..<2_500 {
            let body = Bool.random(using: &rng) ? RandomJSON.mutation(of: Self.valid, using: &rng) : RandomJSON.value(using: &rng)
            do {
                let request = try validator.validate(body)
                accepted += 1
                // Whatever is accepted is something the upstream's own rules accept too.
                #expect(throws: Never.self) { _ = try validator.validateGeneration(JSONValue.parse(JSONCoding.encode(request.generation))) }
            } catch {
                refused += 1
                #expect(error.message.isEmpty == false)
            }
        }
        #expect(accepted > 0 && refused > 0, "the generator reaches both outcomes")
    }

    @Test func randomBytesAreRefusedWithoutACrash() {
        var rng = SplitMix64(state: 99)
        for _ in 0..<2_000 {
            let bytes = Data((0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            #expect(throws: ValidationFailure.self) { _ = try RequestValidator().validate(body: bytes) }
        }
    }

    @Test func theAPINeverAnswersAFuzzedBodyWithAServerError() async throws {
        let harness = try await RelayHarness.start()
        let relay = try await harness.startRelay()
        let api = APIClient(baseURL: relay.baseURL)
        var rng = SplitMix64(state: 7)
        var statuses: [Int: Int] = [:]
        var valid = Self.valid
        valid["callback_url"] = .string(harness.callbackURL)
        for _ in 0..<300 {
            var body = try JSONCoding.encode(RandomJSON.mutation(of: valid, using: &rng))
            if Int.random(in: 0..<5, using: &rng) == 0 { body = body.prefix(Int.random(in: 0...body.count, using: &rng)) }
            let answer = try await api.post("/v1/videos/generations", body: body)
            statuses[answer.status, default: 0] += 1
            #expect([200, 400].contains(answer.status), "\(answer.status): \(String(decoding: body, as: UTF8.self))")
            if answer.status == 400 { #expect(answer.json["error"]?["message"] != nil) }
        }
        #expect(statuses[400, default: 0] > 0)
        try await harness.stop(relay)
    }
}
