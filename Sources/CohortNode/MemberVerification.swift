import CohortCore
import CohortWire
import NIOCore
import NIOPosix
import NIOSSL

/// One check, before membership admits a node, that the process at its address is the
/// node it claims to be (``ClusterTLS`` must be configured).
///
/// It dials the node's cluster TCP port (the address membership knows it by: TCP and UDP
/// share the port) with this node's TLS client context, the way a ``PeerLink`` does:
/// the handshake succeeds only if the server's certificate comes from the cluster CA and
/// names the node (hostname verification on the node name), and the server accepts this
/// node's certificate. This node then sends its hello; the server, having checked that
/// hello against this node's certificate, answers with its own hello, sealed with the
/// cluster key for this process. The check passes only if that answer comes from the
/// very process (uid) and node id being verified, so a process with the key but no
/// cluster certificate cannot be admitted under another node's address.
///
/// The result is reported once, on the connection's event loop; the connection is closed
/// afterwards. Nothing is retried here: membership asks again (with backoff).
enum MemberVerification {
    /// Longest the handshake and the answer may take once connected (connecting has its
    /// own timeout of one second).
    static let answerTimeout: TimeAmount = .seconds(3)

    /// Dials `id` and reports whether it proved who it is.
    ///
    /// - Parameters:
    ///   - hello: this node's hello, bound to `id`'s process.
    ///   - checkAnswer: validates the server's first frame; returns why it is not the
    ///     expected hello, or `nil` if it is.
    ///   - completion: called exactly once.
    static func run(
        _ id: NodeID,
        tls: ClusterTLS,
        eventLoop: any EventLoop,
        hello: ByteBuffer,
        checkAnswer: @escaping @Sendable (ByteBuffer) -> (any Error)?,
        completion: @escaping @Sendable (Result<Void, any Error>) -> Void
    ) {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete(completion)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(1))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: tls.clientContext, serverHostname: id.name))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ClusterFrameDecoder(
                        maxFrameLength: ClusterFrameDecoder.maxHelloLength,
                        maxFirstFrameLength: ClusterFrameDecoder.maxHelloLength)))
                    try channel.pipeline.syncOperations.addHandler(
                        VerificationHandler(hello: hello, checkAnswer: checkAnswer, promise: promise))
                }
            }
            .connect(host: id.address.host, port: id.address.port)
            .whenFailure { error in promise.fail(error) }
    }
}

/// Why a verification failed after the connection was made.
struct VerificationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Sends the hello, waits for the answer, completes the promise once and closes.
private final class VerificationHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let hello: ByteBuffer
    private let checkAnswer: @Sendable (ByteBuffer) -> (any Error)?
    private let promise: EventLoopPromise<Void>
    private var done = false

    init(hello: ByteBuffer, checkAnswer: @escaping @Sendable (ByteBuffer) -> (any Error)?, promise: EventLoopPromise<Void>) {
        self.hello = hello
        self.checkAnswer = checkAnswer
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        // Written before the handshake completes, it waits inside the TLS handler.
        context.writeAndFlush(wrapOutboundOut(hello), promise: nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: MemberVerification.answerTimeout) {
            let (handler, context) = loopBound.value
            handler.finish(context, .failure(VerificationFailure("no answer within \(MemberVerification.answerTimeout)")))
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let problem = checkAnswer(unwrapInboundIn(data)) {
            finish(context, .failure(problem))
        } else {
            finish(context, .success(()))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context, .failure(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context, .failure(VerificationFailure("closed before answering")))
        context.fireChannelInactive()
    }

    private func finish(_ context: ChannelHandlerContext, _ result: Result<Void, any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
        context.close(promise: nil)
    }
}
