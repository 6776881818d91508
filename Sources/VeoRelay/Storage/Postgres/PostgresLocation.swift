import Foundation
import NIOSSL
import PostgresNIO

/// A PostgreSQL database as a URL names it, with libpq's TLS settings:
/// `postgres://user:password@host:5432/database?sslmode=verify-full&sslrootcert=/path/ca.crt`.
///
/// `sslmode` is `disable`, `prefer` (the default, as in libpq: TLS when the server offers it,
/// unverified), `require` (TLS, unverified), `verify-ca` (TLS, the certificate signed by a trusted CA)
/// or `verify-full` (also naming the host the URL names). `sslrootcert` is the CA's PEM file; without
/// it, or with `system`, the system's trust store.
struct PostgresLocation: Sendable {
    enum TLSMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    var host: String
    var port: Int
    var user: String
    var password: String?
    var database: String?
    var tlsMode: TLSMode
    var rootCertificate: String?

    init(url: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty, let user = components.user
        else { throw ConfigurationError("a PostgreSQL URL looks like postgres://user:password@host:5432/database?sslmode=verify-full") }
        self.host = host
        port = components.port ?? 5432
        self.user = user
        password = components.password
        database = components.path.isEmpty ? nil : String(components.path.dropFirst())
        let query = components.queryItems ?? []
        let mode = query.last { $0.name == "sslmode" }?.value ?? TLSMode.prefer.rawValue
        guard let tlsMode = TLSMode(rawValue: mode) else {
            throw ConfigurationError("sslmode=\(mode) in the PostgreSQL URL: use one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.tlsMode = tlsMode
        rootCertificate = query.last { $0.name == "sslrootcert" }?.value.flatMap { $0 == "system" ? nil : $0 }
        if let unknown = query.first(where: { !["sslmode", "sslrootcert"].contains($0.name) }) {
            throw ConfigurationError("\(unknown.name) in the PostgreSQL URL is not a setting the relay reads (sslmode, sslrootcert)")
        }
    }

    /// "PostgreSQL at host:port", for messages.
    var name: String { "PostgreSQL at \(host):\(port)" }

    /// Whether, and how, the link is encrypted: for the banner and `/readyz`.
    var link: String {
        switch tlsMode {
        case .disable: "unencrypted (sslmode=disable)"
        case .prefer: "TLS if the server offers it, unverified (sslmode=prefer; verify-full is recommended)"
        case .require: "TLS, certificate not verified (sslmode=require)"
        case .verifyCA: "TLS, certificate verified against \(rootCertificate ?? "the system's CAs") (sslmode=verify-ca)"
        case .verifyFull: "TLS, certificate verified against \(rootCertificate ?? "the system's CAs") for \(host) (sslmode=verify-full)"
        }
    }

    /// NIOSSL's client configuration for the mode; nil without TLS.
    func tlsConfiguration() throws(ConfigurationError) -> TLSConfiguration? {
        guard tlsMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch tlsMode {
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let rootCertificate, tlsMode == .verifyCA || tlsMode == .verifyFull {
            guard FileManager.default.isReadableFile(atPath: rootCertificate) else {
                throw ConfigurationError("sslrootcert=\(rootCertificate): no readable CA certificate file there")
            }
            tls.trustRoots = .file(rootCertificate)
        }
        return tls
    }

    func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        guard let tls = try tlsConfiguration() else { return .disable }
        let context = try NIOSSLContext(configuration: tls)
        return tlsMode == .prefer ? .prefer(context) : .require(context)
    }

    func clientTLS() throws(ConfigurationError) -> PostgresClient.Configuration.TLS {
        guard let tls = try tlsConfiguration() else { return .disable }
        return tlsMode == .prefer ? .prefer(tls) : .require(tls)
    }

    /// A refused TLS handshake in one line, naming what to change; nil for any other error.
    func tlsRefusal(_ error: any Error) -> String? {
        let psql = error as? PSQLError
        if psql?.code == .sslUnsupported {
            return "\(name) does not offer TLS, which sslmode=\(tlsMode.rawValue) requires: turn ssl on in the server, or use sslmode=disable on a trusted network"
        }
        let underlying = psql?.underlying ?? error
        let text = String(describing: underlying)
        if underlying is NIOSSLExtraError, text.contains("hostname") || text.contains("Hostname") {
            return "\(name)'s certificate does not name \(host) (sslmode=verify-full): connect with the name the certificate carries"
        }
        if underlying is NIOSSLError || underlying is BoringSSLError {
            if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
                return "\(name)'s certificate is not signed by a CA the relay trusts (sslrootcert=\(rootCertificate ?? "system"))"
            }
            return "the TLS handshake with \(name) failed: \(text)"
        }
        return nil
    }
}
