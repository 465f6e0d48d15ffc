import NIOCore
import NIOHTTP1

/// Closes a client connection that stays silent too long between requests, or while
/// sending a request head or body (slowloris), but never while the balancer is busy
/// answering it (waiting for a backend is not the client's fault).
final class ClientIdleTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeout: TimeAmount
    /// Requests read to their end and not answered yet (more than one when pipelined).
    private var awaitingResponses = 0
    /// When the connection is closed unless the client makes progress first. One timer
    /// at most is scheduled: progress only moves the deadline (no timer per request), and
    /// a timer that fires early is scheduled again for the new deadline.
    private var deadline = NIODeadline.distantFuture
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            awaitingResponses += 1
        } else if awaitingResponses == 0 {
            arm(context)  // progress: the client keeps sending
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            awaitingResponses = max(0, awaitingResponses - 1)
            if awaitingResponses == 0 { arm(context) }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline = .now() + timeout
        if timer == nil { schedule(context) }
    }

    private func schedule(_ context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            // Waiting for the balancer's answer is not the client's fault: the next
            // response's end arms the timer again.
            guard handler.awaitingResponses == 0 else { return }
            if NIODeadline.now() < handler.deadline {
                handler.schedule(context)
            } else {
                context.close(promise: nil)
            }
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
