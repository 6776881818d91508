import Crypto
import Foundation

/// A read-only capability for one task, safe to hand to a browser or a device: it opens that task's
/// event stream and read view until it expires, and nothing else. Signed with a key every instance
/// on the database shares, so any instance accepts it.
public struct WatchToken: Sendable, Equatable {
    public var taskID: String
    /// The task's owner: the stream counts against this client's connection limit.
    public var clientID: String
    public var expiresAt: Date

    public init(taskID: String, clientID: String, expiresAt: Date) {
        self.taskID = taskID
        self.clientID = clientID
        self.expiresAt = expiresAt
    }
}

/// Issues and checks watch tokens: `wt1.<base64url(task id \n client id \n expiry)>.<base64url(HMAC-SHA256)>`.
public struct WatchTokenSigner: Sendable {
    public enum Rejection: Error, Equatable {
        case malformed
        case badSignature
        case expired
    }

    static let prefix = "wt1"
    /// The name of the shared secret in the store.
    public static let secretName = "watch-token-key"
    let key: SymmetricKey
    public let lifetime: TimeInterval

    public init(secret: String, lifetime: TimeInterval) {
        key = SymmetricKey(data: Data(secret.utf8))
        self.lifetime = lifetime
    }

    public func token(taskID: String, clientID: String, now: Date) -> String {
        let claims = "\(taskID)\n\(clientID)\n\(now.addingTimeInterval(lifetime).unixSeconds)"
        let body = Base64URL.encode(Data(claims.utf8))
        return "\(Self.prefix).\(body).\(signature(of: body))"
    }

    public func verify(_ token: String, now: Date) throws(Rejection) -> WatchToken {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.prefix else { throw .malformed }
        let body = String(parts[1])
        guard let mac = Base64URL.decode(String(parts[2])),
              HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(body.utf8), using: key)
        else { throw .badSignature }
        guard let claims = Base64URL.decode(body).map({ String(decoding: $0, as: UTF8.self) })?.split(separator: "\n"),
              claims.count == 3, let expiry = TimeInterval(claims[2])
        else { throw .malformed }
        let token = WatchToken(taskID: String(claims[0]), clientID: String(claims[1]), expiresAt: Date(timeIntervalSince1970: expiry))
        guard token.expiresAt > now else { throw .expired }
        return token
    }

    private func signature(of body: String) -> String {
        Base64URL.encode(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)))
    }
}

/// URL-safe base64 without padding (RFC 4648 §5), for tokens that travel in query strings and cookies.
enum Base64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// Keys for the secrets every instance shares through the store (`ClientDirectory.sharedSecret`).
public enum SharedSecret {
    /// 256 random bits, hex.
    public static func generate() -> String {
        Identifier.randomHex(bytes: 32)
    }
}
