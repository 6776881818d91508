import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `fe80::/10`, or a single address).
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let bytes = IPNetwork.parseAddress(parts[0]) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let prefix, (0...bytes.count * 8).contains(prefix) else { return nil }
        self.bytes = bytes
        self.prefix = prefix
    }

    public var description: String {
        (IPNetwork.format(bytes) ?? "?") + "/\(prefix)"
    }

    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefix
        for (lhs, rhs) in zip(address, bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if lhs & mask != rhs & mask { return false }
            remaining -= 8
        }
        return true
    }

    /// 4 bytes for IPv4, 16 for IPv6; nil if `text` is not an IP literal.
    public static func parseAddress(_ text: String) -> [UInt8]? {
        let literal = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func format(_ bytes: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) } != nil
        return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }
}

/// Which addresses the relay may call back. Refuses everything that is not the public internet —
/// loopback, private (RFC 1918), link-local (cloud metadata at 169.254.169.254 included), CGNAT,
/// multicast, unspecified, reserved, IPv6 loopback/ULA/link-local, and IPv4-mapped or -compatible IPv6
/// forms of those — unless an operator allowlists a network on purpose.
public struct AddressPolicy: Sendable, Equatable {
    public var allowed: [IPNetwork]

    public init(allowed: [IPNetwork] = []) {
        self.allowed = allowed
    }

    static let blocked: [IPNetwork] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "64:ff9b::/96", "2001:db8::/32",
    ].map { IPNetwork($0)! }

    static let mappedIPv4 = IPNetwork("::ffff:0:0/96")!

    public func allows(_ address: [UInt8]) -> Bool {
        if allowed.contains(where: { $0.contains(address) }) { return true }
        if Self.mappedIPv4.contains(address) { return allows(Array(address.suffix(4))) }
        return !Self.blocked.contains { $0.contains(address) }
    }

    public func allows(_ address: SocketAddress) -> Bool {
        guard let text = address.ipAddress, let bytes = IPNetwork.parseAddress(text) else { return false }
        return allows(bytes)
    }
}

/// Turns a host name into every address it resolves to (what a connection could end up using).
public protocol HostResolver: Sendable {
    func addresses(of host: String) async throws -> [[UInt8]]
}

/// The system resolver (`getaddrinfo`). The call blocks its thread, so it runs on NIO's pool for
/// blocking work, never on the cooperative pool that serves requests.
public struct SystemResolver: HostResolver {
    public init() {}

    public func addresses(of host: String) async throws -> [[UInt8]] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0, let first = list else { throw ResolutionError(host: host) }
            defer { freeaddrinfo(first) }
            var result: [[UInt8]] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor?.pointee {
                if entry.ai_family == AF_INET, let address = entry.ai_addr {
                    result.append(address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    })
                } else if entry.ai_family == AF_INET6, let address = entry.ai_addr {
                    result.append(address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    })
                }
                cursor = entry.ai_next
            }
            return result
        }
    }

    struct ResolutionError: Error { var host: String }
}

/// A resolver whose answer is given up on after `timeout` (a lookup cannot be interrupted; it
/// finishes on its own).
public struct TimeLimitedResolver: HostResolver {
    let base: any HostResolver
    let timeout: Duration

    public init(_ base: any HostResolver, timeout: Duration) {
        self.base = base
        self.timeout = timeout
    }

    public func addresses(of host: String) async throws -> [[UInt8]] {
        try await answer(within: timeout) { [base] in try await base.addresses(of: host) }
    }
}
