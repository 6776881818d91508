import Foundation
import Testing
@testable import VeoRelay

@Suite("Standard Webhooks signatures", .stopsWhatItStarts)
struct SignatureTests {
    // The reference Python library's test vector, from shared/standard-webhooks.md.
    let secret = try! WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    let timestamp = 1_614_265_330
    let body = Data(#"{"test": 2432232314}"#.utf8)

    @Test func signsTheReferenceVector() {
        #expect(WebhookSignature.sign(id: id, timestamp: timestamp, body: body, secret: secret)
            == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func verifiesTheReferenceVectorAndRefusesATamperedOne() throws {
        let now = Date(timeIntervalSince1970: Double(timestamp))
        try WebhookSignature.verify(id: id, timestamp: timestamp, body: body,
                                    header: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", secret: secret, now: now)
        #expect(throws: WebhookSignature.VerificationError.noMatchingSignature) {
            try WebhookSignature.verify(id: id, timestamp: timestamp, body: body,
                                        header: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", secret: secret, now: now)
        }
        #expect(throws: WebhookSignature.VerificationError.timestampOutOfTolerance) {
            try WebhookSignature.verify(id: id, timestamp: timestamp, body: body,
                                        header: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", secret: secret,
                                        now: now.addingTimeInterval(301))
        }
    }

    @Test func aRotationHeaderVerifiesWithEitherSecret() throws {
        let newer = WebhookSecret.generate()
        let header = WebhookSignature.header(id: id, timestamp: timestamp, body: body, secrets: [newer, secret])
        #expect(header.split(separator: " ").count == 2)
        let now = Date(timeIntervalSince1970: Double(timestamp))
        try WebhookSignature.verify(id: id, timestamp: timestamp, body: body, header: header, secret: secret, now: now)
        try WebhookSignature.verify(id: id, timestamp: timestamp, body: body, header: header, secret: newer, now: now)
        #expect(throws: WebhookSignature.VerificationError.noMatchingSignature) {
            try WebhookSignature.verify(id: id, timestamp: timestamp, body: body, header: header,
                                        secret: WebhookSecret.generate(), now: now)
        }
    }

    @Test(arguments: ["whsec_", "whsec_not-base64!", "whsec_" + Data(count: 8).base64EncodedString()])
    func refusesMalformedSecrets(_ text: String) {
        #expect(throws: SecretFormatError.self) { try WebhookSecret(text) }
    }

    @Test func neverPrintsTheSecret() {
        #expect(!"\(secret)".contains("MfKQ9r8"))
    }
}
