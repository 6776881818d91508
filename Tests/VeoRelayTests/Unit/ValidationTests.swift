import Foundation
import Testing
@testable import VeoRelay

@Suite("Request validation", .stopsWhatItStarts)
struct ValidationTests {
    let validator = RequestValidator()

    @Test(arguments: Scenarios.all.map(\.json))
    func acceptsTheUpstreamScenariosAsWritten(_ json: String) throws {
        let request = try validator.validate(body: Scenarios.relayBody(json))
        #expect(request.callbackURL == "https://hooks.example.com/veo")
        // What goes upstream is exactly what the client sent, minus the relay's own fields.
        let original = try JSONValue.parse(Data(json.utf8))
        #expect(try JSONValue.parse(JSONCoding.encode(request.generation)) == original)
    }

    @Test(arguments: Scenarios.invalid)
    func refusesEachBrokenRuleNamingTheField(_ invalid: Scenarios.Invalid) {
        #expect {
            _ = try validator.validate(body: invalid.body)
        } throws: { error in
            (error as? ValidationFailure)?.param == invalid.param
        }
    }

    @Test(arguments: ["", "not json", "[1,2]", "\"text\"", "{\"model\": }"])
    func refusesBodiesThatAreNotAJSONObject(_ text: String) {
        #expect {
            _ = try validator.validate(body: Data(text.utf8))
        } throws: { error in
            (error as? ValidationFailure)?.param == nil
        }
    }

    @Test func keepsMetadataVerbatim() throws {
        let body = Data(#"{"model": "veo3.1-fast-official", "prompt": "p", "callback_url": "http://h.example/x", "metadata": {"chat": 42, "tags": ["a"]}}"#.utf8)
        let request = try validator.validate(body: body)
        #expect(request.metadata == .object(["chat": .int(42), "tags": .array([.string("a")])]))
    }
}

@Suite("JSON values", .stopsWhatItStarts)
struct JSONValueTests {
    // `8.0` is an integral JSON number and is forwarded as `8`; `7.5` is not an integer.
    @Test(arguments: [("0", JSONValue.int(0)), ("1", .int(1)), ("true", .bool(true)), ("8.0", .int(8)), ("7.5", .double(7.5)),
                      ("4294967295", .int(4_294_967_295)), ("\"8\"", .string("8")), ("null", .null)])
    func keepsIntegersBooleansAndNumbersApart(_ text: String, _ expected: JSONValue) throws {
        #expect(try JSONValue.parse(Data(text.utf8)) == expected)
    }
}
