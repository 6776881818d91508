import Crypto
import Foundation

/// An Ed25519 signing key in the Standard Webhooks form `whsk_` + base64 of the 32-byte seed (the
/// 64-byte seed-and-public-key form that libsodium writes is accepted too). Receivers verify `v1a`
/// signatures with its public key, `whpk_` + base64 of the raw 32 bytes, and hold no secret.
public struct WebhookSigningKey: Sendable, Equatable, CustomStringConvertible {
    public static let prefix = "whsk_"
    public static let publicPrefix = "whpk_"
    public let encoded: String
    let key: Curve25519.Signing.PrivateKey

    public init(_ encoded: String) throws(SecretFormatError) {
        guard encoded.hasPrefix(Self.prefix), let bytes = Data(base64Encoded: String(encoded.dropFirst(Self.prefix.count))),
              [32, 64].contains(bytes.count), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes.prefix(32))
        else { throw SecretFormatError() }
        self.encoded = encoded
        self.key = key
    }

    public static func generate() -> WebhookSigningKey {
        // A fresh key's 32-byte seed always forms a valid key.
        try! WebhookSigningKey(prefix + Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString())
    }

    /// What receivers are given: `whpk_` + base64 of the raw public key.
    public var publicKey: String { Self.publicPrefix + key.publicKey.rawRepresentation.base64EncodedString() }

    public var description: String { "whsk_…" }

    public static func == (lhs: WebhookSigningKey, rhs: WebhookSigningKey) -> Bool { lhs.encoded == rhs.encoded }
}

/// The signature schemes of the Standard Webhooks spec: `v1` (HMAC-SHA256, a shared secret) and
/// `v1a` (Ed25519, a published public key).
public enum SignatureScheme: String, Sendable, Codable, CaseIterable, Comparable {
    case v1
    case v1a

    public static func < (lhs: SignatureScheme, rhs: SignatureScheme) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `v1`, `v1a` or both, written `v1,v1a`.
    public static func parse(_ text: String) throws(SecretFormatError) -> Set<SignatureScheme> {
        let schemes = text.split(separator: ",").map { SignatureScheme(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        guard !schemes.isEmpty, !schemes.contains(nil) else { throw SecretFormatError(expected: "signatures are 'v1', 'v1a' or 'v1,v1a'") }
        return Set(schemes.compactMap { $0 })
    }
}

/// One credential that signs webhooks: an HMAC secret or an Ed25519 key.
public enum SigningCredential: Sendable, Equatable {
    case hmac(WebhookSecret)
    case ed25519(WebhookSigningKey)

    public init(_ text: String) throws(SecretFormatError) {
        self = text.hasPrefix(WebhookSigningKey.prefix) ? .ed25519(try WebhookSigningKey(text)) : .hmac(try WebhookSecret(text))
    }

    public var encoded: String {
        switch self {
        case .hmac(let secret): secret.encoded
        case .ed25519(let key): key.encoded
        }
    }

    public var scheme: SignatureScheme {
        switch self {
        case .hmac: .v1
        case .ed25519: .v1a
        }
    }

    /// One `webhook-signature` entry over the spec's signed content.
    func sign(_ content: Data) -> String {
        switch self {
        case .hmac(let secret): "v1," + Data(HMAC<SHA256>.authenticationCode(for: content, using: secret.key)).base64EncodedString()
        // Ed25519 signatures from swift-crypto are deterministic per RFC 8032 where the platform allows;
        // either way any valid signature verifies.
        case .ed25519(let key): "v1a," + ((try? key.key.signature(for: content)) ?? Data()).base64EncodedString()
        }
    }
}

/// The credentials a client or an endpoint signs with, as the database keeps them: space-separated
/// `whsec_…` and `whsk_…` texts (neither form contains a space).
public struct SigningKeys: Sendable, Equatable, CustomStringConvertible {
    public var credentials: [SigningCredential]

    public init(_ credentials: [SigningCredential]) {
        self.credentials = credentials
    }

    /// Unreadable entries are skipped: one bad credential must not stop the others from signing.
    public init(stored text: String) {
        credentials = text.split(separator: " ").compactMap { try? SigningCredential(String($0)) }
    }

    /// A strict parse for operator input: every entry must be a valid secret or key.
    public init(parsing text: String) throws(SecretFormatError) {
        var credentials: [SigningCredential] = []
        for entry in text.split(separator: " ") { credentials.append(try SigningCredential(String(entry))) }
        guard !credentials.isEmpty else { throw SecretFormatError() }
        self.credentials = credentials
    }

    /// Fresh credentials for these schemes (HMAC first).
    public static func generate(_ schemes: Set<SignatureScheme>) -> SigningKeys {
        SigningKeys(schemes.sorted().map { scheme in
            switch scheme {
            case .v1: .hmac(.generate())
            case .v1a: .ed25519(.generate())
            }
        })
    }

    public var stored: String { credentials.map(\.encoded).joined(separator: " ") }
    public var schemes: Set<SignatureScheme> { Set(credentials.map(\.scheme)) }
    /// The `whpk_` keys receivers verify `v1a` with.
    public var publicKeys: [String] {
        credentials.compactMap { if case .ed25519(let key) = $0 { key.publicKey } else { nil } }
    }

    public var description: String { "SigningKeys(\(schemes.sorted().map(\.rawValue).joined(separator: ",")))" }
}
