import Crypto
import Foundation

/// A Standard Webhooks signing secret: `whsec_` + base64 of 24–64 random bytes.
public struct WebhookSecret: Sendable, Equatable, CustomStringConvertible {
    public static let prefix = "whsec_"
    public let encoded: String
    let key: SymmetricKey

    public init(_ encoded: String) throws(SecretFormatError) {
        let body = encoded.hasPrefix(Self.prefix) ? String(encoded.dropFirst(Self.prefix.count)) : encoded
        guard let bytes = Data(base64Encoded: body), (24...64).contains(bytes.count) else {
            throw SecretFormatError()
        }
        self.encoded = Self.prefix + body
        self.key = SymmetricKey(data: bytes)
    }

    public static func generate() -> WebhookSecret {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        // 32 random bytes always form a valid secret.
        return try! WebhookSecret(prefix + bytes.base64EncodedString())
    }

    /// Never prints the secret itself, so a secret that reaches a log line by accident stays hidden.
    public var description: String { "whsec_…" }

    public static func == (lhs: WebhookSecret, rhs: WebhookSecret) -> Bool { lhs.encoded == rhs.encoded }
}

public struct SecretFormatError: Error, CustomStringConvertible {
    var expected = "a webhook secret is 'whsec_' followed by base64 of 24 to 64 bytes, or an Ed25519 key 'whsk_' followed by base64 of 32 bytes"
    public var description: String { expected }
}

/// Signs and verifies per the Standard Webhooks spec, over the content `{id}.{timestamp}.{body}`:
/// HMAC-SHA256 (`v1`) or Ed25519 (`v1a`).
public enum WebhookSignature {
    static func content(id: String, timestamp: Int, body: Data) -> Data {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(body)
        return content
    }

    public static func sign(id: String, timestamp: Int, body: Data, secret: WebhookSecret) -> String {
        SigningCredential.hmac(secret).sign(content(id: id, timestamp: timestamp, body: body))
    }

    /// The `webhook-signature` header: one entry per credential, space-separated, so a receiver
    /// holding either the old or the new secret (or key) verifies during a rotation.
    public static func header(id: String, timestamp: Int, body: Data, credentials: [SigningCredential]) -> String {
        let signed = content(id: id, timestamp: timestamp, body: body)
        return credentials.map { $0.sign(signed) }.joined(separator: " ")
    }

    public static func header(id: String, timestamp: Int, body: Data, secrets: [WebhookSecret]) -> String {
        header(id: id, timestamp: timestamp, body: body, credentials: secrets.map(SigningCredential.hmac))
    }

    public enum VerificationError: Error, Equatable {
        case noMatchingSignature
        case timestampOutOfTolerance
    }

    /// What a receiver does: accept if any `v1` entry matches, and the timestamp is within tolerance.
    public static func verify(id: String, timestamp: Int, body: Data, header: String, secret: WebhookSecret,
                              now: Date = Date(), tolerance: TimeInterval = 300) throws(VerificationError) {
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { throw .timestampOutOfTolerance }
        let expected = sign(id: id, timestamp: timestamp, body: body, secret: secret)
        let matches = header.split(separator: " ").contains { entry in
            // Constant-time comparison of the MAC bytes.
            guard entry.hasPrefix("v1,"), let given = Data(base64Encoded: String(entry.dropFirst(3))),
                  let wanted = Data(base64Encoded: String(expected.dropFirst(3))), given.count == wanted.count
            else { return false }
            return zip(given, wanted).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
        }
        guard matches else { throw .noMatchingSignature }
    }

    /// What a receiver holding only the public key (`whpk_…`) does: accept if any `v1a` entry verifies.
    public static func verify(id: String, timestamp: Int, body: Data, header: String, publicKey: String,
                              now: Date = Date(), tolerance: TimeInterval = 300) throws(VerificationError) {
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { throw .timestampOutOfTolerance }
        guard publicKey.hasPrefix(WebhookSigningKey.publicPrefix),
              let raw = Data(base64Encoded: String(publicKey.dropFirst(WebhookSigningKey.publicPrefix.count))),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { throw .noMatchingSignature }
        let signed = content(id: id, timestamp: timestamp, body: body)
        let matches = header.split(separator: " ").contains { entry in
            guard entry.hasPrefix("v1a,"), let signature = Data(base64Encoded: String(entry.dropFirst(4))) else { return false }
            return key.isValidSignature(signature, for: signed)
        }
        guard matches else { throw .noMatchingSignature }
    }
}
