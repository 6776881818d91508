import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on loopback that can stop forwarding without closing anything, as a network partition
/// does: connections stay open, bytes sent meanwhile are held, and `heal()` delivers them in order
/// (as TCP retransmission would). New connections are accepted during a partition and hang too.
final class PartitionProxy: Sendable {
    private let valve = Valve()
    private let server: any Channel
    let port: Int

    init(to target: SocketAddress) async throws {
        let valve = self.valve
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop).connect(to: target).flatMap { outbound in
                    outbound.pipeline.addHandler(Forwarder(partner: inbound, valve: valve)).flatMap {
                        inbound.pipeline.addHandler(Forwarder(partner: outbound, valve: valve))
                    }.flatMap { inbound.setOption(.autoRead, value: true) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress?.port ?? 0
    }

    /// From now on nothing crosses the proxy.
    func partition() { valve.close() }

    /// Forwards again, first what was held.
    func heal() { valve.open() }

    func stop() async throws { try await server.close() }

    private final class Valve: Sendable {
        private struct State {
            var closed = false
            var held: [(to: any Channel, bytes: ByteBuffer)] = []
        }

        private let state = Mutex(State())

        func send(_ bytes: ByteBuffer, to channel: any Channel) {
            let passes = state.withLock { state in
                if state.closed { state.held.append((channel, bytes)) }
                return !state.closed
            }
            if passes { channel.writeAndFlush(bytes, promise: nil) }
        }

        func close() { state.withLock { $0.closed = true } }

        func open() {
            let held = state.withLock { state in
                state.closed = false
                defer { state.held = [] }
                return state.held
            }
            for (channel, bytes) in held { channel.writeAndFlush(bytes, promise: nil) }
        }
    }

    /// Hands what one side reads to the other side, through the valve.
    private final class Forwarder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let partner: any Channel
        let valve: Valve

        init(partner: any Channel, valve: Valve) {
            self.partner = partner
            self.valve = valve
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            valve.send(unwrapInboundIn(data), to: partner)
        }

        func channelInactive(context: ChannelHandlerContext) {
            partner.close(promise: nil)
        }
    }
}
