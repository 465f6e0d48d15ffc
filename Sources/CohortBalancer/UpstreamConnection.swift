import CohortCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why an upstream exchange failed.
enum UpstreamError: Error, Hashable {
    /// No response part arrived within the timeout; the connection was closed.
    case timeout
    /// A response part arrived while no request was in flight; the connection was closed.
    case unexpectedData
}

/// Receives the response of the one request in flight on an `UpstreamConnection`.
/// Called on the connection's event loop.
protocol UpstreamResponseDelegate: AnyObject {
    /// A response part (1xx heads included, in order).
    func upstream(received part: HTTPClientResponsePart)
    /// The parts of one socket read were delivered (a good moment to flush).
    func upstreamReadComplete()
    /// The connection's write buffer crossed a watermark (back-pressure for streamed bodies).
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The backend closed the connection (or it failed with `error`) while this delegate
    /// was attached. Not called after `detach()`.
    func upstreamClosed(error: (any Error)?)
}

/// One HTTP/1.1 client connection to a backend.
///
/// Contract: one request at a time, driven from the connection's event loop. `attach` a
/// delegate, write the request, and receive its response through the delegate; `detach`
/// before reusing or closing the connection. Reads are demand-driven (`autoRead` off): the
/// delegate can pause them (`setReading`) while its client cannot take more, so a slow
/// client slows the backend instead of growing a buffer. While no delegate is attached the
/// connection keeps one read outstanding: a backend's close is noticed promptly, and any
/// byte from the backend closes the connection.
final class UpstreamConnection: Sendable {
    let channel: any Channel
    private let boundHandler: NIOLoopBound<UpstreamHandler>

    private init(channel: any Channel, handler: NIOLoopBound<UpstreamHandler>) {
        self.channel = channel
        self.boundHandler = handler
    }

    /// Opens a connection on `eventLoop`; the future fails on connect failure or timeout.
    static func connect(to address: Address, on eventLoop: any EventLoop, timeout: Duration) -> EventLoopFuture<UpstreamConnection> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Request heads are not validated again on the way out: see `ProxyHeaders`.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
            .connect(host: address.host, port: address.port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                return UpstreamConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }
    }

    var isActive: Bool { channel.isActive }

    /// The event-loop side; only on `channel.eventLoop`.
    var handler: UpstreamHandler { boundHandler.value }

    func close() {
        channel.close(promise: nil)
    }
}

/// The event-loop side of `UpstreamConnection`. Every method runs on the channel's loop.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var delegate: (any UpstreamResponseDelegate)?
    private var isClosed = false
    private var readPending = false
    private var readingPaused = false
    private var failure: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { readIfNeeded() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        readIfNeeded()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else {
            failure = UpstreamError.unexpectedData
            context.close(promise: nil)
            return
        }
        // The delegate may detach, reattach (the next request) or close from here:
        // nothing after this call may touch the exchange state.
        delegate.upstream(received: unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readPending = false
        delegate?.upstreamReadComplete()
        readIfNeeded()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamClosed(error: failure)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = error
        context.close(promise: nil)
    }

    // MARK: Driving a request (on the loop)

    /// Attaches the delegate of the next request. `false` when the connection is closed.
    func attach(_ delegate: any UpstreamResponseDelegate) -> Bool {
        guard context != nil, !isClosed else { return false }
        self.delegate = delegate
        readingPaused = false
        readIfNeeded()
        return true
    }

    /// Detaches the delegate: the connection is idle (or about to be closed) and reports nothing more.
    func detach() {
        delegate = nil
        readingPaused = false
        readIfNeeded()
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Pauses or resumes reading the response.
    func setReading(paused: Bool) {
        readingPaused = paused
        readIfNeeded()
    }

    /// Closes the connection with `error` as the reason reported to an attached delegate.
    func close(reason error: any Error) {
        guard !isClosed else { return }
        failure = error
        context?.close(promise: nil)
    }

    private func readIfNeeded() {
        guard let context, !isClosed, !readPending, !readingPaused else { return }
        readPending = true
        context.read()
    }
}
