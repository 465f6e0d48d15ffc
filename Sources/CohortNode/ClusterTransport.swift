import CohortCore
import CohortWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Lets channel handlers created before the node exists reach it once it does.
final class NodeHandle: Sendable {
    private let box = NIOLockedValueBox<ClusterNode?>(nil)

    var node: ClusterNode? { box.withLockedValue { $0 } }

    func set(_ node: ClusterNode?) { box.withLockedValue { $0 = node } }
}

/// Binds the cluster port: TCP for replication and UDP for membership on the same port
/// number (with port 0, TCP picks a free port and UDP takes the same number).
enum ClusterTransport {
    static func bind(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        handle: NodeHandle,
        limits: WireLimits,
        tls: ClusterTLS? = nil
    ) async throws -> (tcp: any Channel, udp: any Channel) {
        var attempt = 0
        while true {
            attempt += 1
            let tcp = try await bindTCP(host: host, port: port, group: group, handle: handle, limits: limits, tls: tls)
            let boundPort = tcp.localAddress?.port ?? port
            do {
                let udp = try await bindUDP(host: host, port: boundPort, group: group, handle: handle, limits: limits)
                return (tcp, udp)
            } catch {
                try? await tcp.close()
                // With an explicit port, or after a few tries, the error is the answer.
                if port != 0 || attempt >= 5 { throw error }
            }
        }
    }

    private static func bindTCP(host: String, port: Int, group: any EventLoopGroup, handle: NodeHandle, limits: WireLimits, tls: ClusterTLS?) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.serverContext))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(ClusterFrameDecoder(
                            maxFrameLength: limits.maxFrameLength, maxFirstFrameLength: ClusterFrameDecoder.maxHelloLength))
                    )
                    try channel.pipeline.syncOperations.addHandler(ReplicationInboundHandler(handle: handle, requiresCertificate: tls != nil))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    private static func bindUDP(host: String, port: Int, group: any EventLoopGroup, handle: NodeHandle, limits: WireLimits) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: limits.maxDatagramLength))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MembershipDatagramHandler(handle: handle))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

/// Reads an inbound replication connection: the first frame must be `hello` (at most
/// ``ClusterFrameDecoder/maxHelloLength`` bytes, within ``helloTimeout``), then every
/// frame is a replication message from that peer. A sequenced frame must follow the hello
/// within another ``helloTimeout`` (peer links send an empty `touched` at once): hellos
/// carry no sequence number, so an eavesdropper could replay one on new connections, but
/// it has no fresh sequenced frame to follow it with, and those connections close. With TLS, an accepted hello is answered
/// with this node's hello (the only frame ever sent on an inbound connection). Any bad frame closes this connection
/// (and only this one) and is counted, and so does a connection that sends no hello in
/// time: a stranger can hold neither memory nor a socket for long.
final class ReplicationInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let handle: NodeHandle
    private let requiresCertificate: Bool
    private var peer: NodeID?
    /// A sequenced frame, admitted by the replay check, followed the hello.
    private var proven = false

    /// How long a new connection may take to deliver its hello, and then its first
    /// sequenced frame.
    static let helloTimeout: TimeAmount = .seconds(5)

    init(handle: NodeHandle, requiresCertificate: Bool = false) {
        self.handle = handle
        self.requiresCertificate = requiresCertificate
    }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.helloTimeout) {
            let (handler, context) = loopBound.value
            guard handler.peer == nil, context.channel.isActive else { return }
            handler.handle.node?.rejectedFrame(HelloTimeout(), from: context.remoteAddress)
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let node = handle.node else {
            context.close(promise: nil)
            return
        }
        let message: WireMessage
        do {
            let (envelope, decoded) = try node.codec.decodeFrame(frame)
            if let rejection = node.admitStreamFrame(envelope, decoded, peer: peer) { throw rejection }
            message = decoded
        } catch {
            node.rejectedFrame(error, from: context.remoteAddress)
            context.close(promise: nil)
            return
        }
        switch (peer, message) {
        case (nil, .hello(let id)):
            if requiresCertificate {
                // The TLS handshake proved the peer holds a certificate from the cluster
                // CA; it must also be the one issued to the node the hello names.
                let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
                guard let certificate, ClusterTLS.nodeNames(of: certificate).contains(id.name) else {
                    node.rejectedFrame(CertificateMismatch(claimed: id.name), from: context.remoteAddress)
                    context.close(promise: nil)
                    return
                }
                // Answer with this node's own hello, bound to the peer's process: a peer
                // verifying this node for membership (MemberVerification) learns that this
                // very process holds the certificate. Peer links ignore it.
                context.writeAndFlush(wrapOutboundOut(node.helloFrame(for: id)), promise: nil)
            }
            peer = id
            expectProof(context: context)
        case (let peer?, .replication(let replication)):
            proven = true
            node.onReplicationMessages(CollectionOfOne(replication), from: peer)
        case (let peer?, .replicationBatch(let messages)):
            proven = true
            node.onReplicationMessages(messages, from: peer)
        case (_?, .unknown):
            proven = true  // A newer peer's message type: skip it.
        default:
            node.rejectedFrame(ProtocolViolation(), from: context.remoteAddress)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handle.node?.rejectedFrame(error, from: context.remoteAddress)
        context.close(promise: nil)
    }

    /// Closes the connection unless a sequenced frame follows the hello in time.
    private func expectProof(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.helloTimeout) {
            let (handler, context) = loopBound.value
            guard !handler.proven, context.channel.isActive else { return }
            handler.handle.node?.rejectedFrame(NoFrameAfterHello(), from: context.remoteAddress)
            context.close(promise: nil)
        }
    }
}

/// A connection that sent no hello within ``ReplicationInboundHandler/helloTimeout``.
struct HelloTimeout: Error, CustomStringConvertible {
    var description: String { "no hello within \(ReplicationInboundHandler.helloTimeout)" }
}

/// A hello not followed by a sequenced frame in time: a replayed hello, most likely.
struct NoFrameAfterHello: Error, CustomStringConvertible {
    var description: String { "no sequenced frame within \(ReplicationInboundHandler.helloTimeout) of the hello" }
}

/// A hello naming another node than the connection's TLS certificate.
struct CertificateMismatch: Error, CustomStringConvertible {
    var claimed: String
    var description: String { "hello names \(claimed), which the peer's certificate does not" }
}

/// A frame that decoded fine but is not allowed where it arrived (no hello first, a
/// membership packet on TCP, a second hello).
struct ProtocolViolation: Error, CustomStringConvertible {
    var description: String { "unexpected message for this connection state" }
}

/// Reads membership datagrams. A datagram that fails to decode is dropped and counted.
final class MembershipDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let handle: NodeHandle

    init(handle: NodeHandle) { self.handle = handle }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let node = handle.node else { return }
        do {
            let (frameEnvelope, message) = try node.codec.decodeFrame(envelope.data)
            switch message {
            case .membership(let packet):
                if let rejection = node.admitDatagram(frameEnvelope, from: packet) { throw rejection }
                node.onMembershipPacket(packet)
            case .unknown:
                break
            default:
                node.rejectedFrame(ProtocolViolation(), from: envelope.remoteAddress)
            }
        } catch {
            node.rejectedFrame(error, from: envelope.remoteAddress)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP read error (e.g. ICMP port unreachable) affects no one else: keep reading.
    }
}
