import CohortCore
import NIOCore

/// The client as the forwarding headers name it (RFC 7239); made once per client connection.
public struct ForwardingClient: Sendable {
    /// Its entry in `X-Forwarded-For`: the IP address, or `unknown`.
    public let address: String
    /// Its `Forwarded` field: `for=<address>;proto=http`, an IPv6 address quoted in brackets.
    public let forwarded: String
    /// The same with `proto=https`, for a trusted proxy's request that came over TLS.
    public let forwardedHTTPS: String
    /// A TLS terminator in front of the balancer: its `X-Forwarded-Proto: https` is believed.
    public let isTrustedProxy: Bool

    public init(ip: String?, isTrustedProxy: Bool = false) {
        address = ip ?? "unknown"
        let node = address.contains(":") ? "\"[\(address)]\"" : address
        forwarded = "for=\(node);proto=http"
        forwardedHTTPS = "for=\(node);proto=https"
        self.isTrustedProxy = isTrustedProxy
    }
}

extension RequestHead {
    /// The request head as sent upstream, as bytes (RFC 9110 §7.6): HTTP/1.1, keep-alive;
    /// the hop-by-hop fields (and those named in `Connection`), `Expect` (the balancer
    /// answers it), the client's framing and `X-Forwarded-Proto` removed; `Content-Length`
    /// set to `bodyLength` (nil: unknown, sent chunked); then the forwarding fields
    /// (`X-Forwarded-For` extending an earlier proxy's, `X-Forwarded-Proto: http` (`https`
    /// when a trusted proxy says so), `Forwarded`, `Via`) and the request id: the client's `Cohort-Request-Id` if it sent
    /// exactly one that a node accepts (``RequestIDSyntax``), else `requestID` (a client's
    /// malformed id would leave a retried write unrecognised, so applied twice).
    /// The other field lines are copied byte for byte, in order. Every line written is
    /// well-formed: copied ones were validated, added ones are built from digits, hex,
    /// fixed text and the peer's IP address.
    public func upstreamHead(bodyLength: Int?, client: ForwardingClient, via: String? = nil, requestID: RequestID? = nil,
                             allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var out = allocator.buffer(capacity: bytes.readableBytes + 200 + (via?.utf8.count ?? 0) + client.address.utf8.count)
        if var requestLine = methodAndTarget { out.writeBuffer(&requestLine) }
        out.writeStaticString(" HTTP/1.1\r\n")
        var forwardedFor: [Range<Int>] = []
        var clientRequestIDs = 0
        var clientRequestID: (line: Range<Int>, isValid: Bool)?
        var overTLS = false
        forEachLine { kind, name, value, line in
            switch kind {
            case .xForwardedFor?:
                if !value.isEmpty { forwardedFor.append(value) }
                return
            case .xForwardedProto?:
                if client.isTrustedProxy { overTLS = HTTPSyntax.token(bytes, value, is: "https") }
                return
            case .contentLength?, .transferEncoding?, .connection?, .hopByHop?, .expect?:
                return
            case .requestID?, .cookie?, .via?, nil:
                break
            }
            if isNamedInConnection(name) { return }
            if kind == .requestID {  // written after the loop, if it is the only one and valid
                clientRequestIDs += 1
                clientRequestID = (line, bytes.getSlice(at: value.lowerBound, length: value.count)
                    .map { RequestIDSyntax.isValid($0.readableBytesView) } ?? false)
                return
            }
            if var raw = bytes.getSlice(at: line.lowerBound, length: line.count) { out.writeBuffer(&raw) }
        }
        if let bodyLength {
            if contentLength != nil || isChunked || bodyLength > 0 {
                out.writeStaticString("content-length: ")
                out.writeString(String(bodyLength))
                out.writeStaticString("\r\n")
            }
        } else {
            out.writeStaticString("transfer-encoding: chunked\r\n")
        }
        out.writeStaticString("x-forwarded-for: ")
        for range in forwardedFor {
            if var value = bytes.getSlice(at: range.lowerBound, length: range.count) { out.writeBuffer(&value) }
            out.writeStaticString(", ")
        }
        out.writeString(client.address)
        if overTLS {
            out.writeStaticString("\r\nx-forwarded-proto: https\r\nforwarded: ")
            out.writeString(client.forwardedHTTPS)
        } else {
            out.writeStaticString("\r\nx-forwarded-proto: http\r\nforwarded: ")
            out.writeString(client.forwarded)
        }
        out.writeStaticString("\r\n")
        if let via {
            out.writeStaticString("via: ")
            out.writeString(via)
            out.writeStaticString("\r\n")
        }
        if clientRequestIDs == 1, let clientRequestID, clientRequestID.isValid,
           var raw = bytes.getSlice(at: clientRequestID.line.lowerBound, length: clientRequestID.line.count) {
            out.writeBuffer(&raw)
        } else if let requestID {
            out.writeStaticString("cohort-request-id: ")
            requestID.write(to: &out)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        return out
    }
}
