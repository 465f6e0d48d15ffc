import CohortCore
import NIOCore
import NIOHTTP1

/// Serves one client connection of the balancer, on its event loop: reads each request's
/// head and body, refuses what is over the limits (431, 508, 413), answers
/// `Expect: 100-continue`, and hands the request to a `ProxyExchange`.
///
/// One request at a time: parts of a pipelined request that arrive while a response is
/// pending are queued (at most one socket read's worth: reading pauses until that
/// response's end is written). NIO's pipelining handler would do the same, but it also
/// stops reading between every request and its response, which costs two `epoll_ctl`
/// calls per request.
///
/// Bodies up to `bufferLimit` are buffered (resendable to another backend); a larger
/// declared length streams at once, and a chunked body once it outgrows the buffer. While
/// a streamed body waits for its backend, reading from the client is paused (the handler
/// holds the pipeline's `read` events), so the balancer holds at most one socket read of
/// body. Malformed requests get 400 and close only this connection.
///
/// Requests are parsed by NIO's `HTTPRequestDecoder`; responses are written as bytes (the
/// backend's head usually as received, see `ResponseHead.clientHead`), so the pipeline
/// has no response encoder.
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for the next request head.
        case idle
        /// Reading a body that may still fit the buffer.
        case buffering(head: HTTPRequestHead, body: ByteBuffer, declared: Int?)
        case exchanging(ProxyExchange)
        /// The connection closes once the response is written; input is ignored.
        case closing
    }

    private let environment: ProxyEnvironment
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var clientIP: String?
    /// The client as the forwarding headers name it.
    private var forwardingClient = ProxyHeaders.Client(ip: nil)
    /// Requests started on this connection: tells a late write completion which request it belongs to.
    private var requestCount = 0
    /// Parts of the next (pipelined) requests, read while a response was pending.
    private var queued: [HTTPServerRequestPart] = []
    private var isDraining = false
    /// A streamed body waits for its backend.
    private var readsPaused = false
    private var readHeld = false
    /// The current exchange's response timeout. One per connection, armed and disarmed by
    /// the exchanges in turn, so that a request costs no scheduled task.
    private(set) var responseTimer = DeadlineTimer()

    init(environment: ProxyEnvironment) {
        self.environment = environment
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientIP = context.channel.remoteAddress?.ipAddress
        forwardingClient = ProxyHeaders.Client(ip: clientIP)
        if !environment.connections.markIdle(context.channel) { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responseTimer.cancel()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !queued.isEmpty || !takesParts {
            if case .closing = state { return }
            queued.append(part)  // reading pauses until they are handled
            return
        }
        handle(part, context: context)
    }

    /// Whether the next request part can be handled now (else it is queued).
    private var takesParts: Bool {
        switch state {
        case .idle, .buffering, .closing: return true
        case .exchanging(let exchange): return exchange.takesClientParts
        }
    }

    /// Handles the queued parts of pipelined requests, up to the next one that must wait.
    private func drainQueued(context: ChannelHandlerContext) {
        guard !isDraining else { return }  // a request started from the loop below finished at once
        isDraining = true
        defer { isDraining = false }
        while !queued.isEmpty, takesParts {
            handle(queued.removeFirst(), context: context)
        }
        readIfHeld()
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch state {
        case .idle:
            guard case .head(let head) = part else { return close(context) }
            startRequest(head, context: context)
        case .buffering(let head, var body, let declared):
            state = .closing  // keeps `body` uniquely referenced while it grows
            switch part {
            case .body(var chunk):
                let overflow = body.readableBytes + chunk.readableBytes > environment.bufferLimit
                body.writeBuffer(&chunk)
                if overflow {
                    streamOrRefuse(head, prefix: body, declared: declared, context: context)
                } else {
                    state = .buffering(head: head, body: body, declared: declared)
                }
            case .end:
                startExchange(head, body: .buffered(body), context: context)
            case .head:
                close(context)
            }
        case .exchanging(let exchange):
            exchange.client(sent: part)
        case .closing:
            break
        }
    }

    private func startRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        requestCount += 1
        environment.connections.markBusy(context.channel)
        if ProxyHeaders.exceedsLimits(head.headers, maxBytes: environment.maxHeaderBytes, maxCount: environment.maxHeaderCount) {
            return refuse(.headersTooLarge, status: .requestHeaderFieldsTooLarge, version: head.version)
        }
        if ProxyHeaders.hasPassed(head.headers, via: environment.via) {
            return refuse(.loop, status: .loopDetected, version: head.version)
        }
        // NIO's decoder rejects a malformed or conflicting Content-Length (400).
        let declared = head.headers.first(name: "content-length").flatMap { Int($0) }
        if let declared, declared > environment.maxRequestBodyBytes {
            return refuse(.bodyTooLarge, status: .payloadTooLarge, version: head.version)
        }
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            let interim: StaticString = head.version == .http1_0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n"
            var bytes = context.channel.allocator.buffer(capacity: interim.utf8CodeUnitCount)
            bytes.writeStaticString(interim)
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        }
        if let declared, declared > environment.bufferLimit {
            return streamOrRefuse(head, prefix: ByteBuffer(), declared: declared, context: context)
        }
        let capacity = min(declared ?? 0, environment.bufferLimit)
        state = .buffering(head: head, body: capacity > 0 ? context.channel.allocator.buffer(capacity: capacity) : ByteBuffer(),
                           declared: declared)
    }

    /// The body outgrew the buffer: stream it, unless the buffer already is the absolute limit.
    private func streamOrRefuse(_ head: HTTPRequestHead, prefix: ByteBuffer, declared: Int?, context: ChannelHandlerContext) {
        guard environment.bufferLimit < environment.maxRequestBodyBytes else {
            return refuse(.bodyTooLarge, status: .payloadTooLarge, version: head.version)
        }
        let stream = StreamedRequestBody(prefix: prefix, declaredLength: declared, limit: environment.maxRequestBodyBytes)
        startExchange(head, body: .streamed(stream), context: context)
    }

    private func startExchange(_ head: HTTPRequestHead, body: ProxyExchange.Body, context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive && !environment.connections.isShuttingDown
        let exchange = ProxyExchange(environment: environment, client: context, owner: self, head: head, body: body,
                                     clientIP: clientIP, forwardingClient: forwardingClient, keepAlive: keepAlive)
        state = .exchanging(exchange)
        exchange.start()
    }

    private func refuse(_ reason: BalancerRefusals.Reason, status: HTTPResponseStatus, version: HTTPVersion) {
        environment.refusals.record(reason, client: clientIP, logger: environment.logger)
        respond(status: status, version: version, keepAlive: false)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = state { exchange.clientWritabilityChanged(isWritable: context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = state { exchange.clientClosed() }
        state = .closing
        responseTimer.cancel()
        environment.connections.markBusy(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        environment.logger.debug("client connection failed", metadata: ["balancer.error": "\(error)"])
        // A malformed request (NIO's parser) gets 400 unless a response is under way.
        if error is HTTPParserError, queued.isEmpty {
            switch state {
            case .idle, .buffering:
                state = .closing
                var bytes = context.channel.allocator.buffer(capacity: 80)
                bytes.writeStaticString("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            case .exchanging, .closing:
                break
            }
        }
        close(context)
    }

    // MARK: Outbound: read control

    func read(context: ChannelHandlerContext) {
        if readsPaused || !queued.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// Stops reading from the client (a streamed body waits for its backend).
    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        readIfHeld()
    }

    private func readIfHeld() {
        guard readHeld, !readsPaused, queued.isEmpty, let context else { return }
        readHeld = false
        context.read()
    }

    // MARK: Response timeout

    /// (Re)starts the response timeout: `environment.responseTimeout` from now.
    func armResponseTimer() {
        guard let context else { return }
        responseTimer.arm(after: environment.responseTimeout, on: context.eventLoop, owner: self)
    }

    func disarmResponseTimer() {
        responseTimer.disarm()
    }

    // MARK: Responses

    /// Writes response bytes (not the end) without flushing.
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Ends the current response (every other byte of it is written; `end`: its last
    /// bytes, if any) and goes on with the next request, or closes the connection once the
    /// end is written when `keepAlive` is false.
    func finishResponse(end: ByteBuffer?, keepAlive: Bool) {
        guard let context else { return }
        state = keepAlive ? .idle : .closing
        readsPaused = false
        let request = requestCount
        context.triggerUserOutboundEvent(ClientIdleTimeoutHandler.ResponseEnded(), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(end ?? context.channel.allocator.buffer(capacity: 0)))
        written.assumeIsolated().whenComplete { [self] result in
            guard keepAlive, case .success = result else { return close(context) }
            // A later request may have started meanwhile (it marked the connection busy).
            guard case .idle = state, request == requestCount else { return }
            if !environment.connections.markIdle(context.channel) { close(context) }
        }
        if keepAlive {
            drainQueued(context: context)
        } else {
            queued.removeAll()
        }
    }

    /// A short plain-text response generated by the balancer itself.
    func respond(status: HTTPResponseStatus, version: HTTPVersion, keepAlive: Bool) {
        let text = "\(status.code) \(status.reasonPhrase)\n"
        var response = version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 "
        response += "\(status.code) \(status.reasonPhrase)\r\ncontent-type: text/plain; charset=utf-8\r\n"
        response += "content-length: \(text.utf8.count)\r\n"
        if !keepAlive {
            response += "connection: close\r\n"
        } else if version == .http1_0 {
            response += "connection: keep-alive\r\n"
        }
        write(ByteBuffer(string: response + "\r\n" + text))
        finishResponse(end: nil, keepAlive: keepAlive)
    }

    /// Closes the connection now (the client is gone, or a response cannot be completed).
    func abort() {
        state = .closing
        context?.close(promise: nil)
    }

    /// Closes the connection. An exchange in progress (a pipelined request started before
    /// an earlier write failed) stays the state until `channelInactive` abandons it.
    private func close(_ context: ChannelHandlerContext) {
        if case .exchanging = state {} else { state = .closing }
        context.close(promise: nil)
    }
}

extension ProxyHandler: DeadlineTimerOwner {
    func deadlineTimerFired() {
        guard let context, responseTimer.expired(on: context.eventLoop, owner: self),
              case .exchanging(let exchange) = state
        else { return }
        exchange.responseTimedOut()
    }
}
