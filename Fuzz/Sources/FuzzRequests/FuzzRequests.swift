import CFuzzDriver
import CohortBalancerCore
import NIOCore

/// A client's bytes as the balancer frames them (`RequestFramer`, `RequestHead`). The
/// first input byte picks the read size (1...64 bytes per read, 0: all at once); the rest
/// is what the client sent on one connection, any number of pipelined requests.
///
/// Checked: no crash or trap; a body never exceeds a declared `Content-Length`; and the
/// property that keeps request smuggling out: what goes to a backend for each request
/// (its upstream head, with the body framed by length and by chunks) frames as exactly
/// that one request again, with the same method and body, no byte left over, no
/// hop-by-hop field, and nothing the client framed reaching it unframed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let control = bytes.first else { return 0 }
    let step = Int(control & 0x3F) == 0 ? Int.max : Int(control & 0x3F)
    var input = ByteBuffer(bytes: bytes.dropFirst())
    var framer = RequestFramer(maxHeadBytes: 4096)

    var pending = ByteBuffer()
    var head: RequestHead?
    var body = ByteBuffer()
    do {
        while input.readableBytes > 0 {
            guard var piece = input.readSlice(length: min(step, input.readableBytes)) else { break }
            pending.writeBuffer(&piece)
            while let part = try framer.next(from: &pending) {
                switch part {
                case .head(let received):
                    guard head == nil else { fatalError("fuzz[requests]: a head inside a request") }
                    head = received
                    _ = received.session(cookieName: "COHORTSESSION")
                    _ = received.hasPassed(via: "1.1 cohort-1")
                case .body(var chunk):
                    guard let current = head else { fatalError("fuzz[requests]: body before the head") }
                    body.writeBuffer(&chunk)
                    if let length = current.contentLength, body.readableBytes > length {
                        fatalError("fuzz[requests]: body of \(body.readableBytes) bytes past Content-Length \(length)")
                    }
                case .end:
                    guard let current = head else { fatalError("fuzz[requests]: end before the head") }
                    if let length = current.contentLength, body.readableBytes != length {
                        fatalError("fuzz[requests]: body of \(body.readableBytes) bytes, Content-Length \(length)")
                    }
                    checkUpstream(current, body: body)
                    head = nil
                    body.clear()
                }
            }
        }
    } catch {
        // Refused: the balancer answers 400 (or 431, 501) and closes the connection.
    }
    return 0
}

/// The request as a backend gets it, its body framed both ways the balancer frames one,
/// is exactly one request with the same method and body.
private func checkUpstream(_ head: RequestHead, body: ByteBuffer) {
    for chunked in [false, true] {
        var upstream = head.upstreamHead(bodyLength: chunked ? nil : body.readableBytes, client: ForwardingClient(ip: "192.0.2.1"),
                                         via: "1.1 cohort-1", requestID: RequestID(prefix: "0123456789abcdef-", serial: 1))
        if chunked {
            if body.readableBytes > 0 {
                upstream.writeString(String(body.readableBytes, radix: 16) + "\r\n")
                upstream.writeImmutableBuffer(body)
                upstream.writeString("\r\n")
            }
            upstream.writeString("0\r\n\r\n")
        } else {
            upstream.writeImmutableBuffer(body)
        }
        let text = String(decoding: upstream.readableBytesView, as: UTF8.self)
        var again = RequestFramer(maxHeadBytes: 1 << 20)
        var received = ByteBuffer()
        var parsed: RequestHead?
        var ended = false
        do {
            while !ended, let part = try again.next(from: &upstream) {
                switch part {
                case .head(let reparsed): parsed = reparsed
                case .body(var chunk): received.writeBuffer(&chunk)
                case .end: ended = true
                }
            }
        } catch {
            fatalError("fuzz[requests]: the upstream request does not frame (\(error)): \(text.debugDescription)")
        }
        guard let parsed, ended, upstream.readableBytes == 0 else {
            fatalError("fuzz[requests]: the upstream request is not exactly one request: \(text.debugDescription)")
        }
        guard parsed.method == head.method, !parsed.isHTTP10, parsed.keepAlive, !parsed.expectsContinue,
              parsed.isChunked == chunked, received == body
        else {
            fatalError("fuzz[requests]: the upstream request changed: \(text.debugDescription)")
        }
        checkNoHopByHop(text)
    }
}

private let hopByHop: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authenticate", "proxy-authorization",
    "expect",
]

private func checkNoHopByHop(_ head: String) {
    for line in head.split(separator: "\r\n").dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { break }
        if hopByHop.contains(line[..<colon].lowercased()) {
            fatalError("fuzz[requests]: a hop-by-hop field went upstream: \(head.debugDescription)")
        }
    }
}

/// The entry point SwiftPM links as `main` in debug builds (see CFuzzDriver.h).
@_cdecl("FuzzRequests_main")
public func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    cohort_fuzz_run_driver(argc, argv) { data, size in
        guard let data else { return fuzz(UnsafeRawPointer(bitPattern: 1)!, 0) }
        return fuzz(data, size)
    }
}
