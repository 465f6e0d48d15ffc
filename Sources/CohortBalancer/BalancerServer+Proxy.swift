import CohortBalancerCore
import CohortCore
import Logging
import NIOCore
import NIOHTTP1

/// A client write failed: the client is gone; abandon the exchange and its connection.
struct ClientGone: Error {
    var underlying: any Error
}

/// How one attempt on one backend ended.
enum AttemptOutcome {
    /// The response was relayed completely; `keepAlive` tells whether the client connection may be reused.
    case completed(keepAlive: Bool)
    /// Nothing of the request reached the backend (connect failure, closed pooled connection).
    case failedBeforeSending
    /// The request was (possibly) sent, and the backend closed or reset before any response byte.
    case failedBeforeResponse
    /// No response byte within the response timeout (or a streamed body write stalled as long).
    case timedOut
    /// A streamed body crossed `maxRequestBodyBytes`.
    case bodyTooLarge
}

/// Request methods that are retried after the request was sent (RFC 9110 §9.2.2).
private func isIdempotent(_ method: HTTPMethod) -> Bool {
    switch method {
    case .GET, .HEAD, .PUT, .DELETE, .OPTIONS: return true
    default: return false
    }
}

extension BalancerServer {
    /// Serves one client connection: requests one at a time (pipelined requests wait in
    /// NIO's pipelining handler). Body-size and header limits answer 413/431 and close;
    /// malformed requests get 400 from NIO's error handler and close only this connection.
    /// Bodies up to `retryBufferBytes` are buffered (resendable); larger ones are streamed.
    func serveClient(_ connection: HTTPServerConnection) async {
        let channel = connection.channel
        let clientIP = channel.remoteAddress?.ipAddress
        do {
            try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                while connections.markIdle(channel) {
                    guard let first = try await parts.next() else { break }
                    connections.markBusy(channel)
                    guard case .head(let head) = first else { break }
                    if ProxyHeaders.exceedsLimits(head.headers, maxBytes: configuration.maxHeaderBytes, maxCount: configuration.maxHeaderCount) {
                        refusals.record(.headersTooLarge, client: clientIP, logger: logger)
                        try await respond(outbound, status: .requestHeaderFieldsTooLarge, version: head.version, keepAlive: false)
                        break
                    }
                    if ProxyHeaders.hasPassed(head.headers, via: via) {
                        refusals.record(.loop, client: clientIP, logger: logger)
                        try await respond(outbound, status: .loopDetected, version: head.version, keepAlive: false)
                        break
                    }
                    // NIO's decoder rejects a malformed or conflicting Content-Length (400).
                    let declared = head.headers.first(name: "content-length").flatMap { Int($0) }
                    if let declared, declared > configuration.maxRequestBodyBytes {
                        refusals.record(.bodyTooLarge, client: clientIP, logger: logger)
                        try await respond(outbound, status: .payloadTooLarge, version: head.version, keepAlive: false)
                        break
                    }
                    if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
                    }
                    let bufferLimit = min(configuration.retryBufferBytes, configuration.maxRequestBodyBytes)
                    var body = channel.allocator.buffer(capacity: min(declared ?? 0, bufferLimit))
                    var complete = false
                    // A declared length over the buffer streams at once; a chunked body once it outgrows it.
                    var overflow = (declared ?? 0) > bufferLimit
                    bodyLoop: while !overflow, let part = try await parts.next() {
                        switch part {
                        case .body(var chunk):
                            overflow = body.readableBytes + chunk.readableBytes > bufferLimit
                            body.writeBuffer(&chunk)
                        case .end:
                            complete = true
                            break bodyLoop
                        case .head:
                            break bodyLoop
                        }
                    }
                    let requestBody: RequestBody
                    if overflow {
                        guard bufferLimit < configuration.maxRequestBodyBytes else {
                            refusals.record(.bodyTooLarge, client: clientIP, logger: logger)
                            try await respond(outbound, status: .payloadTooLarge, version: head.version, keepAlive: false)
                            break
                        }
                        requestBody = .streamed(StreamedBody(parts: parts, prefix: body, declaredLength: declared,
                                                             limit: configuration.maxRequestBodyBytes))
                    } else {
                        guard complete else { break }
                        requestBody = .buffered(body)
                    }
                    let wantsKeepAlive = head.isKeepAlive && !connections.isShuttingDown
                    let keepAlive = try await forward(head: head, body: requestBody, clientIP: clientIP,
                                                      keepAlive: wantsKeepAlive, eventLoop: channel.eventLoop,
                                                      outbound: outbound)
                    if case .streamed(let stream) = requestBody { parts = stream.parts }
                    if !keepAlive || !requestBody.isFinished { break }
                }
            }
        } catch {
            logger.debug("client connection ended", metadata: ["balancer.error": "\(error)"])
        }
        connections.markBusy(channel)
    }

    /// Routes and forwards one request, failing over between backends. Returns
    /// whether the client connection may be reused. Throws when the client connection must
    /// be closed (client gone, or a backend failed after the response had started).
    ///
    /// Retry rules: a failure before the request was sent is retried on another backend for
    /// every method; a close/reset before any response byte is retried for idempotent
    /// methods, and for others only with a `Cohort-Request-Id` (the node then answers a
    /// retry of an already applied write with its recorded response, never applying it
    /// twice); a timeout is retried once for idempotent methods. Each backend is tried at
    /// most once per request. A streamed body is never resent once any body byte was sent.
    func forward(head: HTTPRequestHead, body: RequestBody, clientIP: String?, keepAlive: Bool,
                 eventLoop: any EventLoop, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws -> Bool {
        let session = head.headers["cookie"].lazy.compactMap {
            SessionCookie.sessionID(fromCookieHeader: $0, cookieName: self.configuration.cookieName)
        }.first
        var upstreamHead = ProxyHeaders.upstreamHead(from: head, bodyLength: body.length, clientIP: clientIP, via: via)
        let idempotent = isIdempotent(head.method)
        // A non-idempotent request gets a request id that Cohort nodes use to answer a
        // retry with the first attempt's response instead of applying it twice
        // (see CohortHummingbird's RequestReplay); with it, such a request may be retried
        // when the connection fails before any response byte.
        let replayable = !idempotent && configuration.retryWithRequestID
        if replayable && !upstreamHead.headers.contains(name: ProxyHeaders.requestIDHeader) {
            upstreamHead.headers.add(name: ProxyHeaders.requestIDHeader, value: ProxyHeaders.makeRequestID())
        }
        var tried: Set<String> = []
        var retriedTimeout = false
        while true {
            guard let choice = table.withLockedValue({ $0.choose(route: session?.route, key: session?.key, excluding: tried) }) else {
                let status: HTTPResponseStatus = tried.isEmpty ? .serviceUnavailable : .badGateway
                logger.warning("no live backend", metadata: ["balancer.tried": "\(tried.sorted())", "http.status": "\(status.code)"])
                let reusable = keepAlive && body.isFinished
                try await respond(outbound, status: status, version: head.version, keepAlive: reusable)
                return reusable
            }
            tried.insert(choice.name)
            table.withLockedValue { $0.onRequestStarted(choice.name) }
            let outcome: AttemptOutcome
            do {
                outcome = try await attempt(choice, head: upstreamHead, body: body, requestVersion: head.version,
                                            keepAlive: keepAlive, eventLoop: eventLoop, outbound: outbound)
            } catch {
                table.withLockedValue { $0.onRequestFinished(choice.name) }
                throw error
            }
            if case .bodyTooLarge = outcome {
                // The client's fault, not the backend's.
                table.withLockedValue { $0.onRequestFinished(choice.name) }
                refusals.record(.bodyTooLarge, client: clientIP, logger: logger)
                try await respond(outbound, status: .payloadTooLarge, version: head.version, keepAlive: false)
                return false
            }
            let health = table.withLockedValue { table -> BackendTable.HealthOutcome in
                table.onRequestFinished(choice.name)
                if case .completed = outcome { return table.onSuccess(choice.name) }
                return table.onFailure(choice.name)
            }
            logHealth(health, name: choice.name, cause: "request")
            let retry: Bool
            switch outcome {
            case .completed(let reusable):
                return reusable
            case .failedBeforeSending:
                retry = body.isResendable
            case .failedBeforeResponse:
                retry = (idempotent || replayable) && body.isResendable
            case .timedOut:
                retry = idempotent && !retriedTimeout && body.isResendable
                retriedTimeout = true
            case .bodyTooLarge:
                return false
            }
            logger.info("attempt failed", metadata: [
                "balancer.backend": "\(choice.name)", "balancer.outcome": "\(outcome)", "balancer.retry": "\(retry)",
            ])
            if !retry {
                let status: HTTPResponseStatus = { if case .timedOut = outcome { return .gatewayTimeout } else { return .badGateway } }()
                let reusable = keepAlive && body.isFinished
                try await respond(outbound, status: status, version: head.version, keepAlive: reusable)
                return reusable
            }
        }
    }

    /// One attempt on one backend. Returns a failure outcome while nothing was written to
    /// the client; once the response head was relayed, upstream failures throw (the client
    /// connection is closed, as the response cannot be completed).
    private func attempt(_ choice: BackendTable.Choice, head: HTTPRequestHead, body: RequestBody,
                         requestVersion: HTTPVersion, keepAlive: Bool, eventLoop: any EventLoop,
                         outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws -> AttemptOutcome {
        let upstream: UpstreamConnection
        do {
            // A streamed body gets a fresh connection: a stale pooled one would fail it
            // after body bytes were sent, when it can no longer go to another backend.
            let fresh = if case .streamed = body { true } else { false }
            upstream = try await pool.acquire(
                backend: choice.name, address: choice.address, on: eventLoop, fresh: fresh
            ).connection
        } catch {
            logger.debug("connect failed", metadata: ["balancer.backend": "\(choice.name)", "balancer.error": "\(error)"])
            return .failedBeforeSending
        }
        do {
            switch body {
            case .buffered(let buffer): try await upstream.send(head: head, body: buffer)
            case .streamed: try await upstream.sendHead(head)
            }
        } catch {
            upstream.close()
            if let error = error as? ChannelError, error == .ioOnClosedChannel || error == .alreadyClosed {
                return .failedBeforeSending
            }
            return .failedBeforeResponse
        }
        if case .streamed(let stream) = body {
            let result: StreamedBody.PumpResult
            do {
                result = try await stream.pump(to: upstream, writeTimeout: configuration.responseTimeout)
            } catch {
                upstream.close()
                throw error
            }
            if case .tooLarge = result {
                upstream.close()
                return .bodyTooLarge
            }
            // After `.upstreamFailed`, a response the backend sent before failing is still relayed.
        }
        // Wait for the final response head, skipping 1xx interim responses.
        var responseHead: HTTPResponseHead
        while true {
            let part: HTTPClientResponsePart?
            do {
                part = try await upstream.nextPart(timeout: configuration.responseTimeout)
            } catch UpstreamError.timeout {
                upstream.close()
                return .timedOut
            } catch {
                upstream.close()
                return .failedBeforeResponse
            }
            guard case .head(let candidate) = part else {
                upstream.close()
                return .failedBeforeResponse
            }
            if candidate.status.code >= 200 || candidate.status == .switchingProtocols {
                responseHead = candidate
                break
            }
        }
        let upstreamKeepAlive = responseHead.isKeepAlive
        let framed = responseHead.headers.contains(name: "content-length") || requestVersion != .http1_0
        let clientKeepAlive = keepAlive && framed && body.isFinished
        responseHead = ProxyHeaders.clientHead(from: responseHead, requestVersion: requestVersion, keepAlive: clientKeepAlive)
        // Hold the response until it is complete or `responseBufferBytes` arrived: if the
        // backend dies before that, nothing reached the client and the request can still
        // go to another node (small responses, the common case, are never cut).
        var held: [ByteBuffer] = []
        var heldBytes = 0
        var relaying = false
        do {
            while true {
                let part: HTTPClientResponsePart?
                do {
                    part = try await upstream.nextPart(timeout: configuration.responseTimeout)
                } catch UpstreamError.timeout where !relaying {
                    upstream.close()
                    return .timedOut
                } catch where !relaying {
                    upstream.close()
                    return .failedBeforeResponse
                }
                switch part {
                case .body(let chunk):
                    if relaying {
                        try await writeToClient(outbound, .body(.byteBuffer(chunk)))
                    } else {
                        held.append(chunk)
                        heldBytes += chunk.readableBytes
                        if heldBytes > configuration.responseBufferBytes {
                            relaying = true
                            try await writeToClient(outbound, .head(responseHead))
                            for buffer in held { try await writeToClient(outbound, .body(.byteBuffer(buffer))) }
                            held = []
                        }
                    }
                case .end(let trailers):
                    if relaying {
                        try await writeToClient(outbound, .end(trailers))
                    } else {
                        // The whole held response in one write (one flush, one hop to the loop).
                        var parts: [HTTPServerResponsePart] = [.head(responseHead)]
                        parts.reserveCapacity(held.count + 2)
                        for buffer in held { parts.append(.body(.byteBuffer(buffer))) }
                        parts.append(.end(trailers))
                        try await writeToClient(outbound, contentsOf: parts)
                    }
                    if upstreamKeepAlive {
                        pool.release(upstream, backend: choice.name)
                    } else {
                        upstream.close()
                    }
                    return .completed(keepAlive: clientKeepAlive)
                case .head, .none:
                    if !relaying {
                        upstream.close()
                        return .failedBeforeResponse
                    }
                    throw UpstreamError.unexpectedData
                }
            }
        } catch {
            upstream.close()
            logger.info("response aborted", metadata: ["balancer.backend": "\(choice.name)", "balancer.error": "\(error)"])
            throw error
        }
    }

    private func writeToClient(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
                               _ part: HTTPServerResponsePart) async throws {
        do {
            try await outbound.write(part)
        } catch {
            throw ClientGone(underlying: error)
        }
    }

    private func writeToClient(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
                               contentsOf parts: [HTTPServerResponsePart]) async throws {
        do {
            try await outbound.write(contentsOf: parts)
        } catch {
            throw ClientGone(underlying: error)
        }
    }

    /// A short plain-text response generated by the balancer itself.
    func respond(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: HTTPResponseStatus,
                 version: HTTPVersion, keepAlive: Bool, contentType: String = "text/plain; charset=utf-8",
                 body: String? = nil) async throws {
        let text = body ?? "\(status.code) \(status.reasonPhrase)\n"
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(text.utf8.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: version == .http1_0 ? .http1_0 : .http1_1, status: status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: text))))
        try await outbound.write(.end(nil))
    }
}
