import CohortCore
import CohortReplication
import CohortWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// The outbound TCP connection from this node to one peer, carrying replication frames.
///
/// - Messages are queued in a ``FrameBatch`` and sealed together, as one frame, when the
///   link flushes (once per event-loop turn) or the batch reaches ``maxBatchBytes`` or
///   ``maxBatchMessages``: a burst of messages costs one seal, one frame and one write
///   instead of one each. Sealed frames wait in one pending buffer, written with one
///   write + flush.
/// - While the socket is not writable (the kernel buffer is full), frames wait in the
///   pending buffer; beyond `maxPendingBytes` (sealed and queued together) new messages
///   are refused (back-pressure by dropping: the peer sees a version gap and fetches the
///   whole session).
/// - A failed connect or a lost connection is retried with exponential backoff until the
///   link is closed (the peer left or died).
///
/// Every connection starts with a `hello` frame naming this node, encoded when the
/// connection is made (so it is sealed with the key current at that moment), followed by
/// a sequenced frame (at least an empty `touched`) that proves the hello is no replay.
final class PeerLink: Sendable {
    /// A batch is sealed once it holds this many bytes…
    static let maxBatchBytes = 64 * 1024
    /// …or this many messages (well below receivers' ``WireLimits/maxBatchMessages``).
    static let maxBatchMessages = 1024

    let peer: NodeID
    private let eventLoop: any EventLoop
    private let hello: @Sendable () -> ByteBuffer
    /// Appends `batch` to the buffer as one sealed frame (with the next sequence number).
    private let seal: @Sendable (FrameBatch, inout ByteBuffer) -> Void
    private let maxPendingBytes: Int
    private let maxBackoff: Duration
    private let logger: Logger
    private let onReachability: @Sendable (Bool) -> Void
    /// Mutual TLS for the connection (`nil`: plain TCP; frames are sealed either way).
    private let tls: ClusterTLS?
    private let state: NIOLockedValueBox<State>

    private struct State {
        var channel: (any Channel)?
        /// Sealed frames waiting to be written.
        var pending: ByteBuffer
        /// Messages not sealed yet.
        var batch = FrameBatch()
        var flushScheduled = false
        var closed = false
        var failedAttempts = 0
    }

    init(
        peer: NodeID,
        eventLoop: any EventLoop,
        hello: @escaping @Sendable () -> ByteBuffer,
        seal: @escaping @Sendable (FrameBatch, inout ByteBuffer) -> Void,
        maxPendingBytes: Int,
        maxBackoff: Duration,
        logger: Logger,
        tls: ClusterTLS? = nil,
        onReachability: @escaping @Sendable (Bool) -> Void
    ) {
        self.tls = tls
        self.peer = peer
        self.eventLoop = eventLoop
        self.hello = hello
        self.seal = seal
        self.maxPendingBytes = maxPendingBytes
        self.maxBackoff = maxBackoff
        self.logger = logger
        self.onReachability = onReachability
        self.state = NIOLockedValueBox(State(pending: Self.noPendingFrames))
    }

    /// An empty pending buffer that owns no storage of its own (it shares this one).
    private static let noPendingFrames = ByteBufferAllocator().buffer(capacity: 0)

    /// Starts connecting. Call once.
    func start() {
        connect()
    }

    /// Queues `message` after the messages queued before it. Returns `false` (and queues
    /// nothing) if the link is closed or `maxPendingBytes` is reached.
    func send(_ message: ReplicationMessage) -> Bool {
        let (accepted, scheduleFlush): (Bool, Bool) = state.withLockedValue { state in
            guard !state.closed, state.pending.readableBytes + state.batch.byteCount < maxPendingBytes else { return (false, false) }
            state.batch.append(message)
            if state.batch.byteCount >= Self.maxBatchBytes || state.batch.count >= Self.maxBatchMessages {
                sealBatch(&state)
            }
            guard state.channel != nil, !state.flushScheduled else { return (true, false) }
            state.flushScheduled = true
            return (true, true)
        }
        if scheduleFlush {
            eventLoop.execute { self.flush() }
        }
        return accepted
    }

    /// Bytes waiting to be written to the peer (the replication queue depth).
    var pendingBytes: Int {
        state.withLockedValue { $0.pending.readableBytes + $0.batch.byteCount }
    }

    /// Seals the queued messages into the pending buffer, in order.
    private func sealBatch(_ state: inout State) {
        guard !state.batch.isEmpty else { return }
        seal(state.batch, &state.pending)
        state.batch.removeAll()
    }

    /// Seals what is queued and writes every pending frame, writable or not; the future
    /// completes once they are written (or the connection failed). For a graceful stop:
    /// what this node already answered reaches the peer before the link closes.
    func drained() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let work: ((any Channel), ByteBuffer)? = self.state.withLockedValue { state in
                guard !state.closed, let channel = state.channel else { return nil }
                self.sealBatch(&state)
                let buffer = state.pending
                state.pending = Self.noPendingFrames
                return (channel, buffer)
            }
            guard let (channel, buffer) = work else { return self.eventLoop.makeSucceededVoidFuture() }
            return channel.writeAndFlush(buffer)
        }
    }

    /// Closes the link for good; pending frames are discarded.
    func close() {
        let channel: (any Channel)? = state.withLockedValue { state in
            state.closed = true
            state.pending = Self.noPendingFrames
            state.batch.removeAll()
            defer { state.channel = nil }
            return state.channel
        }
        channel?.close(promise: nil)
    }

    /// Writes what is pending, if the socket can take it. Runs on the link's event loop.
    fileprivate func flush() {
        let work: ((any Channel), ByteBuffer)? = state.withLockedValue { state in
            state.flushScheduled = false
            guard let channel = state.channel, channel.isWritable else { return nil }
            sealBatch(&state)
            guard state.pending.readableBytes > 0 else { return nil }
            let buffer = state.pending
            // No storage until the next frame is sealed, which reserves what it needs.
            state.pending = Self.noPendingFrames
            return (channel, buffer)
        }
        if let (channel, buffer) = work {
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    private func connect() {
        let address = peer.address
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(1))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = self.tls {
                        // The server's certificate must be the cluster CA's and name the peer.
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.clientContext, serverHostname: self.peer.name))
                    }
                    try channel.pipeline.syncOperations.addHandler(PeerLinkHandler(link: self))
                }
            }
            .connect(host: address.host, port: address.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.connected(channel)
                case .failure(let error):
                    self.logger.debug("cannot connect to peer", metadata: ["error": "\(error)"])
                    self.onReachability(false)
                    self.scheduleReconnect()
                }
            }
    }

    private func connected(_ channel: any Channel) {
        let accepted: Bool = state.withLockedValue { state in
            guard !state.closed else { return false }
            state.channel = channel
            if tls == nil { state.failedAttempts = 0 }
            // The receiver keeps the connection once a sequenced frame follows the hello
            // (a replayed hello has none): an empty `touched`, sealed after what waits.
            state.batch.append(.touched(keys: []))
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        logger.debug("connected to peer")
        // With TLS, the peer is reachable only once the handshake proved who it is
        // (``handshakeCompleted()``); frames written before wait inside the TLS handler.
        if tls == nil { onReachability(true) }
        channel.write(hello(), promise: nil)
        flush()
        channel.flush()
    }

    /// The TLS handshake on `channel` succeeded: the peer is who it should be.
    fileprivate func handshakeCompleted(_ channel: any Channel) {
        let current: Bool = state.withLockedValue { state in
            guard let current = state.channel, current === channel else { return false }
            state.failedAttempts = 0
            return true
        }
        if current { onReachability(true) }
    }

    fileprivate func disconnected(_ channel: any Channel) {
        let reconnect: Bool = state.withLockedValue { state in
            guard let current = state.channel, current === channel else { return false }
            state.channel = nil
            return !state.closed
        }
        if reconnect {
            logger.debug("lost connection to peer")
            onReachability(false)
            scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        let delay: Duration? = state.withLockedValue { state in
            guard !state.closed else { return nil }
            state.failedAttempts += 1
            let exponent = min(state.failedAttempts, 10)
            let backoff = min(maxBackoff, .milliseconds(25) * (1 << exponent))
            // Jitter in [50%, 100%] so peers do not reconnect in lockstep.
            return backoff * Double.random(in: 0.5...1.0)
        }
        guard let delay else { return }
        eventLoop.scheduleTask(in: .nanoseconds(delay.nanosecondsClamped)) { self.connect() }
    }
}

/// Watches the outbound connection: anything the peer sends on it is ignored (answers
/// come on the peer's own outbound connection); close and writability are reported.
private final class PeerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let link: PeerLink

    init(link: PeerLink) { self.link = link }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link.flush() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { link.handshakeCompleted(context.channel) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.disconnected(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
