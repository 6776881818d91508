import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import VeoRelay

/// PostgreSQL over TLS, against the test server `scripts/test` starts with `ssl=on` and a certificate
/// for `localhost` from a throwaway CA (`scripts/postgres start DIR --tls`): `verify-full` connects and
/// the link is encrypted; a wrong CA, a wrong host name and `require` against a server without TLS
/// each fail the start with their own line.
@Suite("PostgreSQL over TLS", .stopsWhatItStarts, .enabled(if: TestPostgres.tlsCertificates != nil, "set VEO_RELAY_TEST_POSTGRES_TLS (scripts/test does)"))
struct PostgresTLSTests {
    static let certificates = TestPostgres.tlsCertificates

    /// The test server's URL for a fresh database, reached as `host`, with `settings`.
    static func url(host: String, _ settings: String) async throws -> String {
        var components = try #require(URLComponents(string: try await TestPostgres.freshDatabase()))
        components.host = host
        return try #require(components.string) + "?" + settings
    }

    static func refusal(_ url: String) async throws -> String {
        do {
            let store = try await PostgresStore(url: url, logger: TestLog.logger)
            store.close()
            throw TestFailure("\(url) connected")
        } catch let error as StoreOpenError {
            return "\(error)"
        }
    }

    @Test func verifyFullConnectsAndTheLinkIsEncrypted() async throws {
        let ca = try #require(Self.certificates) + "/ca.crt"
        let url = try await Self.url(host: "localhost", "sslmode=verify-full&sslrootcert=\(ca)")
        let store = try await PostgresStore(url: url, logger: TestLog.logger)
        let encrypted = try await store.rows("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").first?["ssl"].decode(Bool.self)
        #expect(encrypted == true)
        store.close()
        #expect(StoreLocation.link(url).contains("verify-full"))
        // verify-ca checks the CA, not the name: reached by address, the same server is accepted.
        let byAddress = try await PostgresStore(url: try await Self.url(host: "127.0.0.1", "sslmode=verify-ca&sslrootcert=\(ca)"), logger: TestLog.logger)
        byAddress.close()
    }

    @Test func aCertificateFromAnotherCAIsRefused() async throws {
        let other = try #require(Self.certificates) + "/other-ca.crt"
        let refusal = try await Self.refusal(try await Self.url(host: "localhost", "sslmode=verify-full&sslrootcert=\(other)"))
        #expect(refusal.contains("not signed by a CA the relay trusts"), "\(refusal)")
    }

    @Test func aCertificateForAnotherNameIsRefused() async throws {
        let ca = try #require(Self.certificates) + "/ca.crt"
        let refusal = try await Self.refusal(try await Self.url(host: "127.0.0.1", "sslmode=verify-full&sslrootcert=\(ca)"))
        #expect(refusal.contains("does not name 127.0.0.1"), "\(refusal)")
    }

    @Test func requireAgainstAServerWithoutTLSIsRefused() async throws {
        // A server without TLS answers the TLS request with "N", as this stand-in does.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.pipeline.addHandler(DeclinesTLS()) }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let refusal = try await Self.refusal("postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=require")
        #expect(refusal.contains("does not offer TLS"), "\(refusal)")
        try await server.close()
    }

    @Test func aBadSettingIsAConfigurationError() async throws {
        await #expect(throws: ConfigurationError.self) { _ = try await PostgresStore(url: "postgres://u@localhost/db?sslmode=sometimes") }
        await #expect(throws: ConfigurationError.self) { _ = try await PostgresStore(url: "postgres://u@localhost/db?sslmode=verify-full&sslrootcert=/nowhere.crt") }
    }

    /// The relay's start ends with that one line (and a non-zero status), not a retry loop.
    @Test func theRelayStartFailsWithTheReason() async throws {
        let other = try #require(Self.certificates) + "/other-ca.crt"
        let relay = try RelayProcess(["serve", "--port", "0", "--database", try await Self.url(host: "localhost", "sslmode=verify-full&sslrootcert=\(other)")],
                                     environment: RelayProcess.testEnvironment)
        #expect(try await relay.exitStatus() != 0)
        #expect(relay.standardError.contains("not signed by a CA the relay trusts"), "\(relay.standardError)")
    }
}

/// Answers PostgreSQL's TLS request (8 bytes) with "N": this server speaks no TLS.
private final class DeclinesTLS: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "N")), promise: nil)
    }
}
