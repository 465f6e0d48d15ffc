import NIOCore
import NIOHTTP1

/// Closes a client connection that stays silent too long between requests, or while
/// sending a request head or body (slowloris), but never while the balancer is busy
/// answering it (waiting for a backend is not the client's fault).
///
/// Responses are written as bytes: the handler that writes them signals each response's
/// end with the outbound user event `ResponseEnded`.
final class ClientIdleTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Outbound user event: a response's last bytes are being written.
    struct ResponseEnded {}

    private let timeout: TimeAmount
    /// Requests read to their end and not answered yet (more than one when pipelined).
    private var awaitingResponses = 0
    private var timer = DeadlineTimer(.idle)
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            awaitingResponses += 1
            timer.disarm()  // waiting for the balancer's answer is not the client's fault
        } else if awaitingResponses == 0 {
            arm(context)  // progress: the client keeps sending
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is ResponseEnded else { return context.triggerUserOutboundEvent(event, promise: promise) }
        awaitingResponses = max(0, awaitingResponses - 1)
        if awaitingResponses == 0 { arm(context) }
        promise?.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        self.context = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer.arm(after: timeout, on: context.eventLoop, owner: self)
    }
}

extension ClientIdleTimeoutHandler: DeadlineTimerOwner {
    func deadlineTimerFired(_ kind: DeadlineTimer.Kind) {
        guard let context, timer.expired(on: context.eventLoop, owner: self) else { return }
        context.close(promise: nil)
    }
}

/// For a pipeline that writes `HTTPServerResponsePart`s (the admin endpoint): signals each
/// response's end to the `ClientIdleTimeoutHandler` nearer the socket.
final class ResponseEndSignaller: ChannelOutboundHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            context.triggerUserOutboundEvent(ClientIdleTimeoutHandler.ResponseEnded(), promise: nil)
        }
        context.write(data, promise: promise)
    }
}
