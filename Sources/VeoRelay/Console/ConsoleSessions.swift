import Crypto
import Foundation
import Hummingbird

/// Sign-in for the operator console. The operator token is checked once; the session is then a
/// signed, expiring cookie (`HttpOnly`, `SameSite=Strict`, `Secure` unless the relay listens on
/// loopback) that any instance sharing the database accepts. Every form carries a CSRF token derived
/// from the session, and the sign-in form one matched against a cookie set with the form.
public struct ConsoleSessions: Sendable {
    /// The name of the shared secret in the store.
    public static let secretName = "console-session-key"
    static let sessionCookie = "veo_console"
    static let signInCookie = "veo_console_signin"
    static let lifetime: TimeInterval = 12 * 3_600

    let key: SymmetricKey
    let tokenDigest: SHA256.Digest
    let secureCookies: Bool
    let clock: any WallClock

    /// The key depends on the token too, so changing the token ends every session.
    public init(token: String, sharedSecret: String, secureCookies: Bool, clock: any WallClock) {
        key = SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Data(token.utf8), using: SymmetricKey(data: Data(sharedSecret.utf8))))
        tokenDigest = SHA256.hash(data: Data(token.utf8))
        self.secureCookies = secureCookies
        self.clock = clock
    }

    /// A signed-in operator: the session id the CSRF token is bound to.
    struct Session: Sendable {
        var id: String
    }

    /// Compares digests, so the time taken says nothing about how much of the token matched.
    func accepts(token: String) -> Bool {
        SHA256.hash(data: Data(token.utf8)) == tokenDigest
    }

    func newSession() -> (Session, Cookie) {
        let session = Session(id: SharedSecret.generate())
        let expiry = clock.now().addingTimeInterval(Self.lifetime).unixSeconds
        let body = "\(expiry).\(session.id)"
        return (session, cookie(Self.sessionCookie, value: "\(body).\(sign("session:" + body))", maxAge: Int(Self.lifetime)))
    }

    func session(_ request: Request) -> Session? {
        guard let value = request.cookies[Self.sessionCookie]?.value else { return nil }
        let parts = value.split(separator: ".").map(String.init)
        guard parts.count == 3, let expiry = Int(parts[0]), expiry > clock.now().unixSeconds,
              equal(sign("session:\(parts[0]).\(parts[1])"), parts[2]) else { return nil }
        return Session(id: parts[1])
    }

    func csrfToken(for session: Session) -> String { sign("csrf:" + session.id) }

    func checkCSRF(_ given: String?, for session: Session) -> Bool {
        given.map { equal($0, csrfToken(for: session)) } ?? false
    }

    /// For the sign-in form: a random value in a cookie that the form must echo.
    func newSignInNonce() -> (String, Cookie) {
        let nonce = SharedSecret.generate()
        return (nonce, cookie(Self.signInCookie, value: nonce, maxAge: 3_600))
    }

    func checkSignInNonce(_ given: String?, _ request: Request) -> Bool {
        guard let given, let expected = request.cookies[Self.signInCookie]?.value else { return false }
        return equal(given, expected)
    }

    func expired(_ name: String) -> Cookie { cookie(name, value: "", maxAge: 0) }

    private func cookie(_ name: String, value: String, maxAge: Int) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/console", secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    private func sign(_ text: String) -> String {
        Base64URL.encode(Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)))
    }

    /// Compares digests (swift-crypto compares those in constant time), so timing reveals nothing.
    private func equal(_ a: String, _ b: String) -> Bool {
        SHA256.hash(data: Data(a.utf8)) == SHA256.hash(data: Data(b.utf8))
    }
}
