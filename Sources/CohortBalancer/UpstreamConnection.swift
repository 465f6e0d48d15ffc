import CohortBalancerCore
import CohortCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why an upstream exchange failed.
enum UpstreamError: Error, Hashable {
    /// No response part arrived within the timeout; the connection was closed.
    case timeout
    /// A response byte arrived while no request was in flight; the connection was closed.
    case unexpectedData
}

/// Receives the response of the one request in flight on an `UpstreamConnection`.
/// Called on the connection's event loop.
protocol UpstreamResponseDelegate: AnyObject {
    /// A response part (interim 1xx responses are skipped). After `.end` the connection
    /// may be released: `UpstreamHandler.isReusable` says whether it can serve another request.
    func upstream(received part: ResponseFramer.Part)
    /// The parts of one socket read were delivered (a good moment to flush).
    func upstreamReadComplete()
    /// The connection's write buffer crossed a watermark (back-pressure for streamed bodies).
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The backend closed the connection (or it failed with `error`) while this delegate
    /// was attached. Not called after `detach()`.
    func upstreamClosed(error: (any Error)?)
}

/// One HTTP/1.1 client connection to a backend. Requests are written as bytes (see
/// `RequestHead.upstreamHead`); responses are framed by `ResponseFramer`, which keeps the
/// head as bytes so that it can go to the client as received.
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
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var delegate: (any UpstreamResponseDelegate)?
    private var framer = ResponseFramer()
    /// Bytes of the response read but not yet framed (an incomplete head or chunk line).
    private var unframed: ByteBuffer?
    private var isClosed = false
    private var readPending = false
    private var readingPaused = false
    private var failure: (any Error)?
    /// The last response ended where its bytes did: the connection can serve another request.
    private(set) var isReusable = true

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
        var bytes = unwrapInboundIn(data)
        guard delegate != nil, !framer.isIdle else {
            failure = UpstreamError.unexpectedData
            context.close(promise: nil)
            return
        }
        if var earlier = unframed.take() {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        // The delegate may detach, reattach (the next request) or close from inside
        // `upstream(received:)`: the loop re-reads `delegate`, and ends at a response's end.
        while let delegate {
            let part: ResponseFramer.Part?
            do {
                part = try framer.next(from: &bytes)
            } catch {
                failure = error
                context.close(promise: nil)
                return
            }
            guard let part else { break }
            if case .end = part {
                // Bytes past the response's end: the backend broke the protocol, so the
                // connection is not reused (closed by the exchange, or below).
                isReusable = bytes.readableBytes == 0
                delegate.upstream(received: part)
                if !isReusable { context.close(promise: nil) }
                return
            }
            delegate.upstream(received: part)
        }
        if bytes.readableBytes > 0 { unframed = bytes }
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
        // A close-delimited body ends with a clean close; after an error (a reset) it was
        // cut short, and the exchange hears of the failure instead of an end.
        if failure == nil, let delegate, let end = framer.connectionClosed() {
            isReusable = false
            delegate.upstream(received: end)
        }
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

    /// Attaches the delegate of the next request (`toHEAD`: its response has no body).
    /// `false` when the connection is closed.
    func attach(_ delegate: any UpstreamResponseDelegate, toHEAD: Bool) -> Bool {
        guard context != nil, !isClosed, isReusable else { return false }
        self.delegate = delegate
        framer.expectResponse(toHEAD: toHEAD)
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

    /// Writes request bytes (a head, or body bytes framed as its head says) without flushing.
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
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
